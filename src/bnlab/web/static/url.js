/* bnlab explorer — The whole state in the query string, so that a link reproduces the picture.
 *
 *   ?shape=2,2,2,2&seed=0&gamma=2,5&beta=3,8&eps=1e-5&mode=train|eval
 *    &norm=batch|layer|instance|group&groups=2&layout=conv|fc&pin=n,c,h,w
 *    &lang=en|zh&tab=explorer|training[&values=v1,v2,…][&step=K]
 *
 * Read once on load (a missing parameter keeps its default; a bad one is ignored and named in a
 * visible note), written with history.replaceState after every change. */
import { $ } from "./util.js";
import { state, layout, norm, mode, shapeFromControls, channelCount } from "./state.js";
import { rebuildChannels, rebuildGroups, setChannelValues, divisors, ownGroups } from "./channels.js";
import { syncEditingUI } from "./editing.js";
import { t, rich } from "./i18n.js";

export const PARAMS = [
  "layout", "shape", "seed", "norm", "groups", "mode", "eps", "gamma", "beta",
  "values", "pin", "lang", "tab", "step",
];
export const MAX_SIZE = 64; // one size of the shape
export const MAX_ELEMENTS = 4096; // as the server's schema
export const MAX_SEED = 2 ** 31 - 1;
export const STEPS = 5; // the stepper's steps

const numbers = (text) => {
  const parts = String(text).split(",").map((p) => p.trim().replace("−", "-"));
  if (parts.some((p) => p === "")) return null;
  const xs = parts.map(Number);
  return xs.every(Number.isFinite) ? xs : null;
};
const integers = (text) => {
  const xs = numbers(text);
  return xs && xs.every(Number.isInteger) ? xs : null;
};

/** What the link asks for, applied to the controls; returns the ignored parameters:
 *  [{name, value, why}] where why is a key of the message catalog's "url.why.*". */
export function applyParams(search) {
  const q = new URLSearchParams(search);
  const bad = [];
  const ignore = (name, why) => bad.push({ name, value: q.get(name), why });
  for (const name of new Set(q.keys())) if (!PARAMS.includes(name)) ignore(name, "unknown");
  const has = (name) => q.has(name);
  const get = (name) => q.get(name);

  // layout and shape first: everything per channel or per cell depends on them
  let fc = layout() === "fc";
  if (has("layout")) {
    if (get("layout") === "conv" || get("layout") === "fc") fc = get("layout") === "fc";
    else ignore("layout", "choice");
  }
  if (has("shape")) {
    const sh = integers(get("shape"));
    const rank = has("layout") && !bad.some((b) => b.name === "layout") ? (fc ? 2 : 4) : sh?.length;
    if (!sh || (rank !== 2 && rank !== 4) || sh.length !== rank) ignore("shape", fc ? "shape-fc" : "shape");
    else if (sh.some((d) => d < 1 || d > MAX_SIZE) || sh.reduce((a, b) => a * b, 1) > MAX_ELEMENTS)
      ignore("shape", "size");
    else {
      fc = sh.length === 2;
      const ids = fc ? ["size-n", "size-c"] : ["size-n", "size-c", "size-h", "size-w"];
      ids.forEach((id, i) => ($(id).value = sh[i]));
    }
  }
  $("layout").value = fc ? "fc" : "conv";
  if (has("seed")) {
    const s = integers(get("seed"));
    if (s && s.length === 1 && s[0] >= 0 && s[0] <= MAX_SEED) $("seed").value = s[0];
    else ignore("seed", "seed");
  }
  if (has("norm")) {
    const n = get("norm");
    if (!["batch", "layer", "instance", "group"].includes(n)) ignore("norm", "choice");
    else if (n === "instance" && fc) ignore("norm", "instance-fc");
    else $("norm").value = n;
  }
  if (has("mode")) {
    const m = get("mode");
    if (m !== "train" && m !== "eval") ignore("mode", "choice");
    else if (m === "eval" && norm() !== "batch") ignore("mode", "eval-batch");
    else document.querySelector(`input[name=mode][value=${m}]`).checked = true;
  }
  if (has("eps")) {
    const e = numbers(get("eps"));
    if (e && e.length === 1 && e[0] > 0 && e[0] <= 1e3) $("eps").value = get("eps").trim();
    else ignore("eps", "eps");
  }
  // the channel table for this C, then γ and β
  rebuildChannels();
  const c = channelCount();
  for (const kind of ["gamma", "beta"]) {
    if (!has(kind)) continue;
    const xs = numbers(get(kind));
    if (xs && xs.length === c) setChannelValues(kind, xs);
    else ignore(kind, "per-channel");
  }
  if (norm() === "group") {
    const g = has("groups") ? integers(get("groups")) : null;
    if (g && g.length === 1 && g[0] >= 1 && c % g[0] === 0) rebuildGroups(g[0]);
    else {
      if (has("groups")) ignore("groups", "groups");
      rebuildGroups(ownGroups(c)[0] ?? divisors(c)[0]);
    }
  } else if (has("groups")) {
    const g = integers(get("groups"));
    if (!(g && g.length === 1 && g[0] >= 1)) ignore("groups", "groups");
  }
  const shape = shapeFromControls();
  const numel = shape.reduce((a, b) => a * b, 1);
  if (has("values")) {
    const xs = numbers(get("values"));
    if (xs && xs.length === numel && xs.every((v) => Math.abs(v) <= 3.4e38)) {
      state.editing = true;
      state.values = xs;
      state.valuesShape = shape.join(",");
      syncEditingUI();
    } else ignore("values", "values");
  }
  if (has("pin")) {
    const p = integers(get("pin"));
    if (p && p.length === shape.length && p.every((v, i) => v >= 0 && v < shape[i])) {
      const [n, ch, hh = 0, w = 0] = p;
      state.selected = { rank: shape.length, n, c: ch, h: hh, w };
    } else ignore("pin", "pin");
  }
  if (has("lang")) {
    if (get("lang") === "en" || get("lang") === "zh") state.lang = get("lang");
    else ignore("lang", "choice");
  }
  if (has("tab")) {
    if (get("tab") === "explorer" || get("tab") === "training") state.tab = get("tab");
    else ignore("tab", "choice");
  }
  if (has("step")) {
    const k = integers(get("step"));
    if (k && k.length === 1 && k[0] >= 1 && k[0] <= STEPS) state.step = k[0];
    else ignore("step", "step");
  }
  return bad;
}

/** The query string of what the learner sees now. */
export function currentQuery() {
  const q = new URLSearchParams();
  const text = (id) => $(id).value.trim();
  const list = (kind) =>
    [...document.querySelectorAll(`#chan-body input[data-kind=${kind}]`)].map((e) => e.value.trim()).join(",");
  q.set("shape", shapeFromControls().map((d) => d ?? "").join(","));
  q.set("seed", text("seed"));
  q.set("gamma", list("gamma"));
  q.set("beta", list("beta"));
  q.set("eps", text("eps"));
  q.set("mode", norm() === "batch" ? mode() : "train");
  q.set("norm", norm());
  if (norm() === "group") q.set("groups", $("groups").value);
  q.set("layout", layout());
  const p = state.selected;
  if (p) q.set("pin", (p.rank === 4 ? [p.n, p.c, p.h, p.w] : [p.n, p.c]).join(","));
  q.set("lang", state.lang);
  q.set("tab", state.tab);
  if (state.editing && state.values) q.set("values", state.values.map((v) => (v === null ? "" : String(v))).join(","));
  if (state.step) q.set("step", String(state.step));
  // commas and the ε's minus stay readable in the link
  return q.toString().replaceAll("%2C", ",");
}

/** Write the state into the address bar (no new history entry). */
export function writeURL() {
  if (!state.urlReady) return;
  const query = currentQuery();
  if (`?${query}` !== location.search) history.replaceState(null, "", `?${query}`);
}

/** The visible note naming the parameters of the link that were ignored. */
export function showURLNote() {
  const el = $("url-note");
  el.hidden = !state.urlBad.length;
  const limits = { size: { max: MAX_SIZE, numel: MAX_ELEMENTS }, seed: { max: MAX_SEED }, step: { max: STEPS } };
  const items = state.urlBad.map((b) => `${b.name}=${b.value} (${t(`url.why.${b.why}`, limits[b.why])})`);
  // the parameters are code: name=value as the link has them
  el.replaceChildren(...(items.length ? rich(t("url.note", { items: items.map((i) => `\`${i.replaceAll("`", "")}\``).join("; ") })) : []));
}
