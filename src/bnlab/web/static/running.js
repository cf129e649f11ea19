/* bnlab explorer — Running statistics over many batches: the feed card and its chart. */
import { $, color, f4, h } from "./util.js";
import { t } from "./i18n.js";
import { validate } from "./validate.js";
import { state, readInt, readNum, shapeFromControls } from "./state.js";
import { setChannelValues } from "./channels.js";
import { schedule, postJSON } from "./api.js";
import { showError } from "./errors.js";
import { lineChart } from "./charts.js";

// ---- running statistics over many batches ---------------------------------------------------
export function resetRunning(c) {
  state.running = {
    mean: new Array(c).fill(0),
    var: new Array(c).fill(1),
    step: 0,
    history: [{ step: 0, mean: new Array(c).fill(0), var: new Array(c).fill(1), batch: null, batchVar: null }],
  };
  setChannelValues("rmean", state.running.mean);
  setChannelValues("rvar", state.running.var);
  drawRunning();
}

export async function feed(times) {
  const invalid = validate();
  if (invalid) {
    showError({ key: invalid.key, params: invalid.params }, invalid.field);
    return;
  }
  for (let k = 0; k < times; k++) {
    const body = {
      shape: shapeFromControls(),
      seed: readInt($("seed")),
      step: state.running.step,
      running_mean: state.running.mean.slice(),
      running_var: state.running.var.slice(),
      momentum: readNum($("momentum")),
    };
    let r;
    try {
      r = await postJSON("/api/step", body);
    } catch (e) {
      showError({ key: "error.server", params: { msg: e.message } }, "body");
      return;
    }
    if (!r.ok) {
      showError(r.data.detail ?? `HTTP ${r.status}`, r.data.field ?? "body");
      return;
    }
    const d = r.data;
    state.running.step = d.step;
    state.running.mean = d.running_mean;
    state.running.var = d.running_var;
    state.running.history.push({
      step: d.step,
      mean: d.running_mean.slice(),
      var: d.running_var.slice(),
      batch: d.batch_mean,
      batchVar: d.batch_var,
    });
  }
  setChannelValues("rmean", state.running.mean);
  setChannelValues("rvar", state.running.var);
  drawRunning();
  schedule();
}

export function drawRunning() {
  const r = state.running;
  const c = r.mean.length;
  $("feed-step").textContent = t("feed.step", { step: r.step });
  const vals = [];
  for (let i = 0; i < c; i++) {
    vals.push(
      h(
        "span",
        { class: "rv" },
        h("span", { class: "swatch", style: `background:${color(i)}` }),
        `${i}: ${t("feed.mean")} `,
        h("b", { "data-testid": `running-mean-${i}`, text: f4(r.mean[i]) }),
        ` ${t("feed.var")} `,
        h("b", { "data-testid": `running-var-${i}`, text: f4(r.var[i]) }),
      ),
    );
  }
  $("running-values").replaceChildren(...vals);
  const hist = r.history;
  const xmax = Math.max(5, r.step);
  // one chart per statistic: the running value (line), each batch's own (hollow dots), and the
  // population's (dashed, labelled in the right margin, outside the plotted data)
  const chart = (stat, batchKey, population, popText, testid, ylabel) => {
    const lines = [];
    const dots = [];
    for (let i = 0; i < c; i++) {
      lines.push({ xs: hist.map((p) => p.step), ys: hist.map((p) => p[stat][i]), color: color(i), marker: hist.length < 40 });
      const withBatch = hist.filter((p) => p[batchKey]);
      dots.push({ xs: withBatch.map((p) => p.step), ys: withBatch.map((p) => p[batchKey][i]), color: color(i) });
    }
    const ys = [0, population * 1.2, ...hist.flatMap((p) => [...p[stat], ...(p[batchKey] ?? [])])];
    return lineChart({
      width: 340,
      height: 190,
      testid,
      xdom: [0, xmax],
      ydom: [Math.min(...ys), Math.max(...ys)],
      xlabel: t("feed.x"),
      integerX: true,
      ylabel,
      lines,
      dots,
      hlines: [{ y: population, label: [t("feed.population"), popText], side: "right" }],
    });
  };
  $("running-chart-box").replaceChildren(
    h(
      "div",
      { class: "chart-pair" },
      chart("mean", "batch", 0.5, "0.5", "running-chart", t("feed.ymean")),
      chart("var", "batchVar", 1 / 12, "1/12", "running-var-chart", t("feed.yvar")),
    ),
    h("p", { class: "hint", text: t("feed.legend") }),
  );
}
