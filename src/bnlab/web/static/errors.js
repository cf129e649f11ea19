/* bnlab explorer — A message next to the setting it is about. */
import { $, h } from "./util.js";
import { state } from "./state.js";
import { t, apiMessage } from "./i18n.js";

// ---- errors --------------------------------------------------------------------------------
export const errorEl = h("div", { class: "error", "data-testid": "error", role: "alert" });

export function fieldTarget(field) {
  const [root, idx] = String(field || "body").split(".");
  const one = (kind) =>
    idx !== undefined
      ? [...document.querySelectorAll(`input[data-kind=${kind}][data-c="${idx}"]`)]
      : [...document.querySelectorAll(`input[data-kind=${kind}]`)];
  const sizes = ["size-n", "size-c", "size-h", "size-w"].map($);
  switch (root) {
    case "shape":
      return { anchor: $("grp-shape"), inputs: idx !== undefined ? [sizes[+idx]] : sizes };
    case "seed":
      return { anchor: $("grp-seed"), inputs: [$("seed")] };
    case "values": {
      const cell = idx !== undefined ? document.querySelector(`#steps .cell-input[data-i="${idx}"]`) : null;
      return { anchor: $("grp-seed"), inputs: [$("edit-values"), cell].filter(Boolean) };
    }
    case "gamma":
      return { anchor: $("grp-channels").querySelector("table"), inputs: one("gamma") };
    case "beta":
      return { anchor: $("grp-channels").querySelector("table"), inputs: one("beta") };
    case "running_mean":
      return { anchor: $("grp-channels").querySelector("table"), inputs: one("rmean") };
    case "running_var":
      return { anchor: $("grp-channels").querySelector("table"), inputs: one("rvar") };
    case "eps":
      return { anchor: $("eps").closest(".row"), inputs: [$("eps")] };
    case "momentum":
      return { anchor: $("momentum").closest(".row"), inputs: [$("momentum")] };
    case "mode":
      return { anchor: $("grp-mode"), inputs: [...document.querySelectorAll("input[name=mode]")] };
    case "norm":
      return { anchor: $("grp-norm"), inputs: [$("norm")] };
    case "groups":
      return { anchor: $("grp-norm"), inputs: [$("groups")] };
    default:
      return { anchor: $("error-home"), inputs: [] };
  }
}

/** The message shown: the server's detail (a string) or a catalog entry ({key, params}). */
function words(message) {
  return typeof message === "string" ? apiMessage(message) : t(message.key, message.params);
}
let shown = null; // the message on the page, redrawn in another language

export function showError(message, field) {
  clearError();
  shown = { message, field };
  const { anchor, inputs } = fieldTarget(field);
  errorEl.textContent = words(message);
  errorEl.dataset.field = field;
  if (anchor.id === "error-home") anchor.append(errorEl);
  else anchor.after(errorEl);
  for (const el of inputs) el.classList.add("invalid");
  const st = $("status");
  st.hidden = false;
  st.textContent = t(state.trace ? "status.stale" : "status.none");
  document.body.dataset.error = "1";
}
export function clearError() {
  shown = null;
  errorEl.remove();
  for (const el of document.querySelectorAll(".invalid")) el.classList.remove("invalid");
  $("status").hidden = true;
  document.body.dataset.error = "0";
}
/** The message on the page, again, in the page's language now. */
export function redrawError() {
  if (shown) showError(shown.message, shown.field);
}
