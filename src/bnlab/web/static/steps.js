/* bnlab explorer — The step cards: input, μ and σ², x − μ, x̂, y, running statistics. */
import { $, color, f4, fmtG, h } from "./util.js";
import { t, rich } from "./i18n.js";
import { state, norm } from "./state.js";
import { geometry, redrawFrames, tensorGrid, statGrid } from "./grids.js";
import { resetCalc, showCalc } from "./drawer.js";
import { drawStep, drawPerturb } from "./stepper.js";

// ---- words for the learner -----------------------------------------------------------------
export function statWords(geo) {
  const { N, C, H, W, is4, norm: nrm, G } = geo;
  const m = geo.members.get(0).length;
  const c = t(is4 ? "word.channel" : "word.feature");
  const mWords = {
    batch: is4 ? `m = N·H·W = ${N}·${H}·${W} = ${m}` : `m = N = ${m}`,
    layer: is4 ? `m = C·H·W = ${C}·${H}·${W} = ${m}` : `m = F = ${m}`,
    instance: `m = H·W = ${H}·${W} = ${m}`,
    group: is4 ? `m = (C/G)·H·W = ${C / G}·${H}·${W} = ${m}` : `m = F/G = ${m}`,
  }[nrm];
  const mValues = t("mValues", { mWords, m }); // "m = N·H·W = 2·2·2 = 8 values"
  return {
    m,
    mWords,
    mValues,
    summary: t(`summary.${nrm}`, { c, C, G, mValues }),
    per: t(`per.${nrm}`, { c, fc: !is4 }),
    keep: {
      batch: is4 ? `[1, ${C}, 1, 1]` : `[1, ${C}]`,
      layer: is4 ? `[${N}, 1, 1, 1]` : `[${N}, 1]`,
      instance: `[${N}, ${C}, 1, 1]`,
      group: t("keep.group", { N, G }),
    }[nrm],
  };
}

export const SYMBOL = {
  input: "x",
  mean: "μ",
  var: "σ²",
  x_minus_mean: "x − μ",
  xhat: "x̂",
  output: "y",
  running_mean: "",
};

// ---- rendering the trace -------------------------------------------------------------------
export function card(num, stepName, title, ...kids) {
  return h(
    "section",
    { class: `card step step-${stepName}`, "data-testid": `step-${stepName}` },
    h("h3", {}, h("span", { class: "num", text: String(num) }), h("span", { class: "sym", text: SYMBOL[stepName] ?? "" }), ` ${title}`),
    ...kids,
  );
}
/** A formula is code: the same in every language. */
export function formulaLine(text) {
  return h("p", { class: "formula" }, h("code", { text }));
}
export function shapeLine(shape, extra = "") {
  return h("p", { class: "shape", text: t("shape", { shape: shape.join(", "), extra }) });
}

export function render(trace) {
  const geo = geometry(trace);
  state.geo = geo;
  const steps = Object.fromEntries(trace.steps.map((st) => [st.name, st]));
  const words = statWords(geo);
  const training = trace.training;
  const isBatch = geo.norm === "batch";
  const summary = isBatch && !training ? t("summary.eval") : words.summary;
  $("summary").replaceChildren(h("strong", { text: summary }), ...rich(t("summary.hover")));

  const box = $("steps");
  const keepInput = state.editing && box.querySelector(".step-input .editable") &&
    state.valuesShape === geo.shape.join(",");
  const oldInput = keepInput ? box.querySelector(".step-input") : null;
  const cards = [];

  // 1. input
  if (oldInput) {
    redrawFrames(oldInput.querySelector("svg.grid"), geo); // the norm may have changed
    cards.push(oldInput);
  } else {
    const inputSvg = tensorGrid("input", steps.input.value.data, geo, { editable: state.editing });
    if (state.editing) inputSvg.classList.add("editable");
    cards.push(
      card(
        1,
        "input",
        t(state.editing ? "card.input.typed" : "card.input"),
        shapeLine(steps.input.shape, geo.is4 ? " = (N, C, H, W)" : " = (N, F)"),
        h("div", { class: "scroll" }, inputSvg),
        h("p", {
          class: "note",
        }, ...rich(state.editing ? t("note.input.typed") : t(geo.is4 ? "note.input.conv" : "note.input.fc", geo))),
      ),
    );
  }

  // 2. μ and σ²
  const meanStep = steps.mean;
  const varStep = steps.var;
  const reduced = meanStep.reduced_axes.length
    ? t("reduced", { axes: meanStep.reduced_axes.join(", "), mValues: words.mValues, keep: words.keep })
    : ` — ${words.per}`;
  cards.push(
    card(
      2,
      "mean",
      t(training ? "card.stats" : "card.stats.eval"),
      h("p", { class: "sub", text: `${training ? "" : t("stored")}${words.per}` }),
      formulaLine(meanStep.formula),
      h("div", { class: "scroll" }, statGrid("mean", meanStep.value.data, geo)),
      formulaLine(varStep.formula),
      h("div", { class: "scroll" }, statGrid("var", varStep.value.data, geo)),
      shapeLine(meanStep.shape, reduced),
    ),
  );

  // 3–5. x − μ, x̂, y
  let num = 3;
  for (const name of ["x_minus_mean", "xhat", "output"]) {
    const st = steps[name];
    let extra = null;
    if (name === "output") {
      const g = trace.weight ? trace.weight.data.map(fmtG).join(", ") : t("each1");
      const b = trace.bias ? trace.bias.data.map(fmtG).join(", ") : t("each0");
      extra = h("p", { class: "sub", text: t("with.gb", { g, b, c: t(geo.is4 ? "word.channel" : "word.feature") }) });
    }
    cards.push(
      card(
        num++,
        name,
        t(`title.${name}`),
        formulaLine(st.formula),
        extra,
        h("div", { class: "scroll" }, tensorGrid(name, st.value.data, geo)),
        h("p", { class: "note", text: t(training || name === "output" ? `note.${name}` : `note.eval.${name}`) }),
      ),
    );
  }

  // 6. running statistics after this step (batch norm, train)
  if (steps.running_mean && steps.running_var) {
    const before = trace.meta.running_before || {};
    const m = words.m;
    const rows = [];
    for (let c = 0; c < geo.C; c++) {
      const bm = before.running_mean ? before.running_mean[c] : 0;
      const bv = before.running_var ? before.running_var[c] : 1;
      rows.push(
        h(
          "tr",
          {},
          h("td", {}, h("span", { class: "swatch", style: `background:${color(c)}` }), `${geo.is4 ? "c" : "f"}=${c}`),
          h("td", { class: "num" }, `${f4(bm)} → `, h("b", { "data-testid": `cell-running_mean-${c}`, text: f4(steps.running_mean.value.data[c]) })),
          h("td", { class: "num" }, `${f4(bv)} → `, h("b", { "data-testid": `cell-running_var-${c}`, text: f4(steps.running_var.value.data[c]) })),
        ),
      );
    }
    cards.push(
      card(
        num++,
        "running_mean",
        t("card.running"),
        formulaLine(`running_mean ← ${fmtG(1 - trace.momentum)}·running_mean + ${fmtG(trace.momentum)}·μ`),
        formulaLine(`running_var  ← ${fmtG(1 - trace.momentum)}·running_var + ${fmtG(trace.momentum)}·σ²·${m}/${m - 1}`),
        h(
          "table",
          { class: "running" },
          h("thead", {}, h("tr", {}, h("th", { text: "" }), h("th", { text: t("run.mean") }), h("th", { text: t("run.var") }))),
          h("tbody", {}, ...rows),
        ),
        h("p", {
          class: "note",
          text: t("note.running", { momentum: fmtG(trace.momentum) }),
        }),
      ),
    );
  }
  if (oldInput) {
    // keep the grid being typed in where it is: moving it would take the focus away
    for (const el of [...box.children]) if (el !== oldInput) el.remove();
    box.append(...cards.slice(1), state.feedCard);
  } else box.replaceChildren(...cards, state.feedCard);
  const pinned = pinnedIndex(geo);
  if (pinned !== null) showCalc(pinned);
  else resetCalc();
  drawPerturb();
  drawStep({ animate: false });
}

/** The flat index, in this geometry, of the clicked cell's (n, c, h, w); null where it is gone. */
export function pinnedIndex(geo) {
  const p = state.selected;
  if (!p || p.rank !== geo.shape.length) return null;
  if (p.n >= geo.N || p.c >= geo.C || p.h >= geo.H || p.w >= geo.W) return null;
  return ((p.n * geo.C + p.c) * geo.H + p.h) * geo.W + p.w;
}
