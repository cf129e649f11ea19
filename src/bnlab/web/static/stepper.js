/* bnlab explorer — Step through the calculation, and see what batch dependence means.
 *
 * The stepper (button "step through", ←/→ or its buttons): 1 one statistic's cells flow into μ,
 * 2 the same into σ², 3 the statistics broadcast back over the batch, 4 x̂, 5 y = γ·x̂ + β, each
 * with its sentence.  The cells move as small dots (CSS transitions; none when the reader asks
 * for reduced motion).  "change sample n = 1" adds 1 to sample 1 and marks what moved in sample 0. */
import { $, f4, fmtG } from "./util.js";
import { state } from "./state.js";
import { t } from "./i18n.js";
import { cellEls, statEls } from "./grids.js";
import { statWords, pinnedIndex } from "./steps.js";
import { writeURL, STEPS } from "./url.js";

const reducedMotion = () => matchMedia("(prefers-reduced-motion: reduce)").matches;
const MAX_DOTS = 32;

function clearStepMarks() {
  for (const e of document.querySelectorAll("#steps .step-hl, #steps .step-target, .controls .step-hl")) {
    e.classList.remove("step-hl", "step-target");
  }
  document.querySelector(".flow-layer")?.remove();
}

/** Dots from each source element to its target (pairs), moved by a CSS transition. */
function flow(pairs) {
  if (reducedMotion() || !pairs.length) return;
  const layer = document.createElement("div");
  layer.className = "flow-layer";
  layer.setAttribute("aria-hidden", "true");
  document.body.append(layer);
  const centre = (el) => {
    const r = el.getBoundingClientRect();
    return [r.left + r.width / 2, r.top + r.height / 2];
  };
  const dots = pairs.slice(0, MAX_DOTS).map(([from, to]) => {
    const [x0, y0] = centre(from);
    const [x1, y1] = centre(to);
    const dot = document.createElement("span");
    dot.className = "flow-dot";
    dot.style.left = `${x0}px`;
    dot.style.top = `${y0}px`;
    layer.append(dot);
    return [dot, x1 - x0, y1 - y0];
  });
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      for (const [dot, dx, dy] of dots) dot.style.transform = `translate(${dx}px, ${dy}px)`;
    }),
  );
  setTimeout(() => layer.remove(), 1100);
}

/** Highlight step state.step of the calculation and say in a sentence what happens. */
export function drawStep({ animate = true } = {}) {
  clearStepMarks();
  const on = state.step > 0;
  $("step-toggle").textContent = t(on ? "stepper.stop" : "stepper.start");
  $("step-toggle").setAttribute("aria-pressed", String(on));
  $("step-toggle").classList.toggle("on", on);
  $("step-nav").hidden = !on;
  $("step-caption").hidden = !on;
  const geo = state.geo;
  if (!on || !geo || !state.trace) return;
  const K = state.step;
  $("step-count").textContent = t("stepper.of", { k: K, n: STEPS });
  $("step-prev").disabled = K <= 1;
  $("step-next").disabled = K >= STEPS;
  const steps = Object.fromEntries(state.trace.steps.map((st) => [st.name, st]));
  const i = pinnedIndex(geo) ?? 0; // the pinned cell, else the first
  const p = geo.pos(i);
  const k = geo.statOf(i);
  const members = geo.members.get(k);
  const input = cellEls.get("input") ?? [];
  const mark = (els, cls) => els.filter(Boolean).forEach((e) => e.classList.add(cls));
  const words = statWords(geo);
  const setWords = t(`set.${geo.norm}`, { fc: !geo.is4, n: p.n, c: p.c, g: Math.floor(p.c / (geo.C / geo.G)) });
  const g = state.trace.weight ? state.trace.weight.data[p.c] : 1;
  const b = state.trace.bias ? state.trace.bias.data[p.c] : 0;
  const params = {
    m: members.length,
    set: setWords,
    k: geo.statLabel(k),
    mu: f4(steps.mean.value.data[k]),
    v: f4(steps.var.value.data[k]),
    keep: words.keep,
    xh: f4(steps.xhat.value.data[i]),
    g: fmtG(g),
    b: fmtG(b),
    y: f4(steps.output.value.data[i]),
  };
  let pairs = [];
  let target = null;
  if (K === 1 || K === 2) {
    const stat = statEls.get(K === 1 ? "mean" : "var")?.[k];
    mark(members.map((j) => input[j]), "step-hl");
    mark([stat], "step-target");
    pairs = members.map((j) => [input[j], stat]);
    target = stat;
  } else if (K === 3) {
    const grid = cellEls.get("x_minus_mean") ?? [];
    mark([...(statEls.get("mean") ?? []), ...(statEls.get("var") ?? [])], "step-hl");
    mark(grid, "step-target");
    pairs = members.map((j) => [statEls.get("mean")?.[k], grid[j]]);
    target = grid[i];
  } else if (K === 4) {
    const grid = cellEls.get("xhat") ?? [];
    mark([cellEls.get("x_minus_mean")?.[i], statEls.get("var")?.[k]], "step-hl");
    mark(grid, "step-target");
    pairs = [[cellEls.get("x_minus_mean")?.[i], grid[i]], [statEls.get("var")?.[k], grid[i]]];
    target = grid[i];
  } else {
    const grid = cellEls.get("output") ?? [];
    const gb = [...document.querySelectorAll(`#chan-body input[data-c="${p.c}"]`)];
    mark([cellEls.get("xhat")?.[i], ...gb], "step-hl");
    mark(grid, "step-target");
    pairs = [[cellEls.get("xhat")?.[i], grid[i]], ...gb.map((e) => [e, grid[i]])];
    target = grid[i];
  }
  $("step-caption").textContent = t(`stepper.${K}`, params);
  if (animate) {
    target?.scrollIntoView?.({ block: "nearest", inline: "nearest", behavior: reducedMotion() ? "auto" : "smooth" });
    flow(pairs.filter(([a, z]) => a && z));
  }
}

export function setStep(k) {
  state.step = Math.max(0, Math.min(STEPS, k));
  drawStep();
  writeURL();
}

/** ← and → step back and forth while stepping (not while typing in a field). */
export function onStepKey(ev) {
  if (!state.step || ev.altKey || ev.ctrlKey || ev.metaKey) return;
  if (ev.target.closest?.("input, select, textarea")) return;
  if (ev.key === "ArrowRight" && state.step < STEPS) setStep(state.step + 1);
  else if (ev.key === "ArrowLeft" && state.step > 1) setStep(state.step - 1);
  else return;
  ev.preventDefault();
}

/** With "change sample n = 1": mark sample 1's changed inputs and sample 0's moved outputs. */
export function drawPerturb() {
  for (const e of document.querySelectorAll("#steps .moved, #steps .perturbed")) e.classList.remove("moved", "perturbed");
  const note = $("perturb-note");
  const geo = state.geo;
  const one = geo && geo.N < 2;
  $("perturb").disabled = Boolean(one);
  $("grp-perturb").title = t(one ? "perturb.one" : "perturb.title");
  const base = state.baseTrace;
  note.hidden = !(state.perturb && base && geo);
  if (note.hidden) return;
  const out = state.trace.steps.find((st) => st.name === "output").value.data;
  const before = base.steps.find((st) => st.name === "output").value.data;
  const per = geo.numel / geo.N;
  let moved = 0;
  let max = 0;
  for (let i = 0; i < per; i++) {
    const d = Math.abs(out[i] - before[i]);
    if (d > 1e-6) {
      moved += 1;
      cellEls.get("output")?.[i]?.classList.add("moved");
    }
    max = Math.max(max, d);
  }
  for (let i = per; i < 2 * per; i++) cellEls.get("input")?.[i]?.classList.add("perturbed");
  const batch = geo.norm === "batch";
  const key = !batch ? "perturb.other" : state.trace.training ? "perturb.train" : "perturb.eval";
  note.textContent = t(key, { moved, max: f4(max) });
  note.dataset.moved = String(moved);
}
