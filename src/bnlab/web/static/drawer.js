/* bnlab explorer — Hover outlines and the calculation drawer of one clicked cell. */
import { $, f4, fmtG, par, h } from "./util.js";
import { t } from "./i18n.js";
import { state } from "./state.js";
import { cellEls, statEls } from "./grids.js";
import { writeURL } from "./url.js";

// ---- hover and click -----------------------------------------------------------------------
export function clearMarks() {
  for (const e of document.querySelectorAll("#steps .src, #steps .same, #steps .hot")) {
    e.classList.remove("src", "same", "hot");
  }
}
export function markCell(i) {
  const geo = state.geo;
  if (!geo || i >= geo.numel) return;
  clearMarks();
  const k = geo.statOf(i);
  for (const j of geo.members.get(k)) cellEls.get("input")?.[j]?.classList.add("src");
  for (const els of cellEls.values()) els[i]?.classList.add("same");
  for (const els of statEls.values()) els[k]?.classList.add("same");
  for (const f of document.querySelectorAll(`#steps .frame[data-stat="${k}"]`)) f.classList.add("hot");
}
export function markStat(k) {
  const geo = state.geo;
  if (!geo) return;
  clearMarks();
  for (const j of geo.members.get(k) ?? []) cellEls.get("input")?.[j]?.classList.add("src");
  for (const els of statEls.values()) els[k]?.classList.add("same");
  for (const f of document.querySelectorAll(`#steps .frame[data-stat="${k}"]`)) f.classList.add("hot");
}

export function resetCalc() {
  state.selected = null;
  $("calc-close").hidden = true;
  $("calc-card").classList.remove("open");
  $("calc").replaceChildren(
    h("p", {
      class: "hint",
      text: t("calc.hint"),
    }),
  );
  for (const e of document.querySelectorAll("#steps .picked")) e.classList.remove("picked");
  writeURL();
}

export function showCalc(i) {
  const trace = state.trace;
  const geo = state.geo;
  const steps = Object.fromEntries(trace.steps.map((st) => [st.name, st]));
  const p = geo.pos(i);
  const k = geo.statOf(i);
  const x = steps.input.value.data[i];
  const mu = steps.mean.value.data[k];
  const v = steps.var.value.data[k];
  const xc = steps.x_minus_mean.value.data[i];
  const xh = steps.xhat.value.data[i];
  const y = steps.output.value.data[i];
  const g = trace.weight ? trace.weight.data[p.c] : 1;
  const b = trace.bias ? trace.bias.data[p.c] : 0;
  const eps = fmtG(trace.eps);
  const c = geo.is4 ? "c" : "f";
  const ix = { batch: c, layer: "n", instance: `n,${c}`, group: "n,g" }[geo.norm];
  const kl = geo.statLabel(k);
  const members = geo.members.get(k);
  const xs = steps.input.value.data;
  const list = (fn) => {
    const parts = members.map(fn);
    return parts.length <= 10 ? parts.join(" + ") : `${parts.slice(0, 6).join(" + ")} + … + ${parts.slice(-2).join(" + ")}`;
  };
  const where = geo.is4 ? `n=${p.n}, c=${p.c}, h=${p.h}, w=${p.w}` : `n=${p.n}, f=${p.c}`;
  const m = members.length;
  const fromWords = t(`from.${geo.norm}`, {
    all: t("all", { m }),
    the: t("the", { m }),
    fc: !geo.is4,
    n: p.n,
    c: p.c,
    g: Math.floor(p.c / (geo.C / geo.G)),
  });
  const lines = [];
  // the calculation is code; what it means (prose) follows it in the page's language
  const line = (testid, label, text, prose = null) =>
    lines.push(
      h(
        "div",
        { class: "eq", "data-testid": testid },
        h("span", { class: "eq-label", text: label }),
        h("span", { class: "eq-body" }, h("code", { text }), prose ? h("span", { class: "prose", text: ` ${prose}` }) : null),
      ),
    );
  line("calc-cell", t("calc.cell"), `[${where}]   x = ${f4(x)}  `, t("calc.from", { from: fromWords }));
  if (trace.training) {
    line("calc-mean", t("calc.mean"), `μ${kl} = (1/${members.length})·(${list((j) => f4(xs[j]))}) = ${f4(mu)}`);
    line("calc-var", t("calc.var"), `σ²${kl} = (1/${members.length})·(${list((j) => `${par(f4(xs[j] - mu))}²`)}) = ${f4(v)}`);
  } else {
    line("calc-mean", t("calc.mean"), `μ${kl} = running_mean${kl} = ${f4(mu)}  `, t("calc.stored"));
    line("calc-var", t("calc.var"), `σ²${kl} = running_var${kl} = ${f4(v)}`);
  }
  line("calc-xhat", t("calc.xhat"), `x̂ = (x − μ)/√(σ² + ε) = ${par(f4(xc))}/√(${f4(v)} + ${eps}) = ${f4(xh)}`);
  line(
    "calc-y",
    t("calc.y"),
    `y = (x − μ_${ix})/√(σ²_${ix} + ε)·γ_${c} + β_${c} = (${f4(x)} − ${par(f4(mu))})/√(${f4(v)} + ${eps})·${par(fmtG(g))} + ${par(fmtG(b))} = ${f4(y)}`,
  );
  $("calc").replaceChildren(...lines);
  $("calc-close").hidden = false;
  $("calc-card").classList.add("open");
  for (const e of document.querySelectorAll("#steps .picked")) e.classList.remove("picked");
  for (const els of cellEls.values()) els[i]?.classList.add("picked");
}

export function onStepsOver(ev) {
  const cell = ev.target.closest?.(".cell");
  if (!cell) return;
  if (cell.dataset.i !== undefined) markCell(+cell.dataset.i);
  else if (cell.dataset.stat !== undefined) markStat(+cell.dataset.stat);
}
/** Enter (or space) on a focused cell pins its calculation, as a click does. */
export function onStepsKey(ev) {
  if (ev.key !== "Enter" && ev.key !== " ") return;
  if (ev.target.closest?.("input")) return;
  const cell = ev.target.closest?.(".cell");
  if (!cell || cell.dataset.i === undefined) return;
  ev.preventDefault();
  onStepsClick(ev);
}
export function onStepsClick(ev) {
  if (ev.target.closest?.("input")) return;
  const cell = ev.target.closest?.(".cell");
  if (!cell || cell.dataset.i === undefined) return;
  const i = +cell.dataset.i;
  state.selected = { rank: state.geo.shape.length, ...state.geo.pos(i) };
  showCalc(i);
  writeURL();
}
