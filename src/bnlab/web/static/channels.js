/* bnlab explorer — The per-channel table (γ, β, running statistics) and the groups G of group norm. */
import { $, color, sub, fmtG, h } from "./util.js";
import { t, rich } from "./i18n.js";
import { state, layout, readInt, channelCount, norm, mode, perChannel } from "./state.js";
import { resetRunning } from "./running.js";

// ---- the channel table (γ, β, running statistics) -------------------------------------------
export function rebuildChannels() {
  const c = channelCount();
  if (c === null) return;
  const old = { gamma: perChannel("gamma"), beta: perChannel("beta") };
  if (state.running.mean.length !== c) resetRunning(c);
  const eval_ = norm() === "batch" && mode() === "eval";
  const fc = layout() === "fc";
  $("chan-head").replaceChildren(
    h("th", { text: t(fc ? "chan.feature" : "chan.channel") }),
    h("th", { text: t("chan.gamma") }),
    h("th", { text: t("chan.beta") }),
  );
  const input = (kind, sym, i, value, testid) =>
    h(
      "td",
      {},
      h(
        "label",
        { class: "chan-input" },
        sym ? h("span", { class: "sym", text: `${sym}${sub(i)}` }) : null,
        h("input", {
          type: "text",
          inputmode: "decimal",
          "data-kind": kind,
          "data-c": i,
          "data-testid": testid,
          "aria-label": `${sym || kind}${sub(i)}`,
          value: value === null || value === undefined ? "" : fmtG(value),
        }),
      ),
    );
  const name = (i) =>
    h(
      "td",
      { class: "chan-name" },
      h("span", { class: "swatch", style: `background:${color(i)}` }),
      `${fc ? "f" : "c"} = ${i}`,
    );
  const rows = [];
  const runRows = [];
  for (let i = 0; i < c; i++) {
    rows.push(
      h(
        "tr",
        {},
        name(i),
        input("gamma", "γ", i, old.gamma[i] ?? 1, `gamma-${i}`),
        input("beta", "β", i, old.beta[i] ?? 0, `beta-${i}`),
      ),
    );
    runRows.push(
      h(
        "tr",
        {},
        name(i),
        input("rmean", "", i, state.running.mean[i], `rmean-${i}`),
        input("rvar", "", i, state.running.var[i], `rvar-${i}`),
      ),
    );
  }
  $("chan-body").replaceChildren(...rows);
  $("run-body").replaceChildren(...runRows);
  $("run-inputs").hidden = !eval_;
  // layer norm: torch.nn.LayerNorm's γ, β are per element of (C, H, W), the explorer's per channel
  $("chan-hint").replaceChildren(
    ...rich(t(eval_ ? "chan.hint.eval" : norm() === "layer" ? "chan.hint.layer" : "chan.hint.train")),
  );
  $("chan-hint").dataset.testid = "chan-hint";
  rebuildGroups();
}
export function setChannelValues(kind, values) {
  for (const el of document.querySelectorAll(`input[data-kind=${kind}]`)) {
    const v = values[+el.dataset.c];
    if (v !== undefined) el.value = fmtG(v);
  }
}

// ---- groups G of group norm: only divisors of C can be picked --------------------------------
export function divisors(c) {
  const out = [];
  for (let d = 1; d <= c; d++) if (c % d === 0) out.push(d);
  return out;
}
/** Divisors of C other than 1 (layer norm) and C (instance norm): a group norm of its own. */
export const ownGroups = (c) => divisors(c).filter((d) => d > 1 && d < c);
/** G if it divides C, else the divisor nearest to it, preferring one that is neither 1 nor C. */
export function validGroups(c, g) {
  if (c % g === 0) return g;
  const own = ownGroups(c);
  const pool = own.length ? own : divisors(c);
  return pool.reduce((best, d) => (Math.abs(d - g) < Math.abs(best - g) ? d : best));
}
export function rebuildGroups(g = readInt($("groups")) ?? 1) {
  const c = channelCount();
  if (c === null) return;
  const fc = layout() === "fc";
  const G = validGroups(c, Math.max(1, g));
  const label = (d) =>
    d === 1 ? t("groups.layer") : d === c ? t(fc ? "groups.feature" : "groups.instance", { d }) : String(d);
  $("groups").replaceChildren(...divisors(c).map((d) => h("option", { value: d, text: label(d) })));
  $("groups").value = String(G);
}
/** Picking group norm: with no G but 1 (layer norm) and C (instance norm), C grows until one exists. */
export function pickGroupDefaults() {
  const c = channelCount();
  if (c === null) return;
  let wider = c;
  while (!ownGroups(wider).length) wider += 1; // 1, 2, 3 → 4; a prime p → p + 1
  const fc = layout() === "fc";
  const C = fc ? "F" : "C";
  if (wider !== c) {
    $("size-c").value = wider;
    state.groupNote = { C, wider, c, fc }; // drawn by syncVisibility as "group.note"
  }
  const g = readInt($("groups")) ?? 1;
  rebuildGroups(ownGroups(wider).includes(g) ? g : ownGroups(wider)[0]);
}
