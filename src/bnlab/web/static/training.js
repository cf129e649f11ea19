/* bnlab explorer — The training view: runs, curves and percentile bands. */
import { RUN_COLORS, $, h } from "./util.js";
import { t, rich } from "./i18n.js";
import { lineChart } from "./charts.js";

// ---- the training view ---------------------------------------------------------------------
export const training = { loaded: false, runs: [], root: null };

export async function loadRuns() {
  let data;
  try {
    const res = await fetch("/api/runs");
    data = await res.json();
  } catch (e) {
    $("runs-empty").hidden = false;
    $("runs-empty").textContent = t("train.cannot", { msg: e.message });
    return;
  }
  const a = $("run-a");
  const b = $("run-b");
  const before = training.loaded ? { a: a.value, b: b.value } : null; // a reload keeps the picks
  training.loaded = true;
  training.runs = data.runs ?? [];
  training.root = data.root;
  const names = training.runs.map((r) => r.name);
  // run names are data: never translated
  a.replaceChildren(...names.map((n) => h("option", { value: n, text: n, translate: "no" })));
  b.replaceChildren(
    h("option", { value: "", text: t("train.none"), "data-i18n": "train.none" }),
    ...names.map((n) => h("option", { value: n, text: n, translate: "no" })),
  );
  const withBN = training.runs.find((r) => r.config?.bn);
  const without = training.runs.find((r) => r.config && !r.config.bn && r !== withBN);
  const first = withBN ?? training.runs[0];
  const second = without ?? training.runs.find((r) => r !== first);
  if (before && names.includes(before.a)) {
    a.value = before.a;
    b.value = before.b === "" || names.includes(before.b) ? before.b : "";
  } else {
    if (first) a.value = first.name;
    b.value = second ? second.name : "";
  }
  drawTraining();
}

export function drawTraining() {
  const body = $("runs-body");
  const empty = $("runs-empty");
  $("runs-root").replaceChildren(...(training.root ? rich(`${t("train.root")} \`${training.root}\``) : []));
  if (!training.runs.length) {
    body.replaceChildren();
    empty.hidden = false;
    empty.replaceChildren(
      h("strong", { text: t("train.empty") }),
      h("p", {}, ...rich(training.root ? t("train.empty.root", { root: training.root }) : t("train.empty.none"))),
    );
    $("run-a").disabled = true;
    $("run-b").disabled = true;
    return;
  }
  empty.hidden = true;
  $("run-a").disabled = false;
  $("run-b").disabled = false;
  const byName = Object.fromEntries(training.runs.map((r) => [r.name, r]));
  const chosen = [byName[$("run-a").value], byName[$("run-b").value]].filter(Boolean);
  if (chosen.length === 2 && chosen[0] === chosen[1]) chosen.pop();

  const describe = (run, i) => {
    const cfg = run.config ?? {};
    const last = run.metrics.at(-1);
    return h(
      "div",
      { class: "run-card", style: `border-color:${RUN_COLORS[i]}`, "data-testid": `run-card-${i}` },
      h("h3", { style: `color:${RUN_COLORS[i]}`, text: run.name, translate: "no" }),
      h("p", { text: cfg.note || "", translate: "no" }),
      h("p", {
        class: "muted",
      }, ...rich([
          cfg.model && `${t("train.model")} \`${cfg.model}\``, // the config's values are data: code
          `${t("train.bn")}: ${cfg.bn ? `\`${cfg.bn}\`` : t("train.bn.none")}`,
          cfg.lr !== undefined && `${t("train.lr")} ${cfg.lr}`,
          t("train.epochs", { n: run.metrics.length }),
          last && t("train.final", { acc: (100 * last.test_acc).toFixed(2) }),
        ].filter(Boolean).join(" · "))),
    );
  };

  const epochs = chosen.flatMap((r) => r.metrics.map((m) => m.epoch));
  const xdom = [Math.min(1, ...epochs), Math.max(2, ...epochs)];
  const lossLines = chosen.map((r, i) => ({ xs: r.metrics.map((m) => m.epoch), ys: r.metrics.map((m) => m.train_loss), color: RUN_COLORS[i], marker: true, testid: `loss-line-${i}` }));
  const losses = lossLines.flatMap((l) => l.ys).filter(Number.isFinite);
  const accLines = chosen.flatMap((r, i) => [
    { xs: r.metrics.map((m) => m.epoch), ys: r.metrics.map((m) => m.train_acc), color: RUN_COLORS[i], dash: true, marker: true },
    { xs: r.metrics.map((m) => m.epoch), ys: r.metrics.map((m) => m.test_acc), color: RUN_COLORS[i], marker: true },
  ]);
  const accs = accLines.flatMap((l) => l.ys).filter(Number.isFinite);
  const legend = chosen.map((r, i) => ({ label: r.name, color: RUN_COLORS[i], data: true }));
  const lossChart = lineChart({
    width: 600, height: 240, testid: "chart-loss", title: t("train.loss.title"),
    xdom, ydom: [Math.min(0, ...losses), Math.max(0.1, ...losses)], xlabel: t("train.epoch"), ylabel: t("train.loss"),
    integerX: true, lines: lossLines, legend,
  });
  const accChart = lineChart({
    width: 600, height: 240, testid: "chart-acc", legendAt: "bottom-right", title: t("train.acc.title"),
    xdom, ydom: [Math.min(...accs, 1), Math.max(...accs, 0)], xlabel: t("train.epoch"), ylabel: t("train.acc"),
    integerX: true, lines: accLines,
    legend: [...legend, { label: t("train.train"), color: "#555", dash: true }, { label: t("train.test"), color: "#555" }],
  });

  const layerNames = chosen.map((r) => {
    const names = Object.keys(r.bands ?? {});
    return names.every((n) => /^\d+$/.test(n)) ? names.sort((p, q) => p - q) : names;
  });
  const nLayers = Math.max(0, ...layerNames.map((l) => l.length));
  const bandRows = [];
  for (let k = 0; k < nLayers; k++) {
    const bands = chosen.map((r, i) => (layerNames[i][k] !== undefined ? r.bands[layerNames[i][k]] : null));
    const ys = bands.filter(Boolean).flatMap((b) => [...b.q15, ...b.q85]).filter(Number.isFinite);
    const steps = bands.filter(Boolean).flatMap((b) => b.step);
    const ydom = [Math.min(...ys), Math.max(...ys)];
    const xdomB = [Math.min(...steps), Math.max(...steps)];
    const charts = chosen.map((r, i) => {
      const b = bands[i];
      if (!b) return h("div", { class: "chart-missing" }, h("span", { translate: "no", text: r.name }), t("train.nolayer", { k: k + 1 }));
      return lineChart({
        width: 600, height: 210, testid: `bands-${"ab"[i]}-${k}`,
        titleData: r.name,
        title: t("train.layer", { layer: layerNames[i][k] }),
        xdom: xdomB, ydom, xlabel: t("train.step"), ylabel: t("train.preact"), integerX: true,
        bands: [{ xs: b.step, lo: b.q15, hi: b.q85, color: RUN_COLORS[i], testid: `band-${"ab"[i]}-${k}` }],
        lines: [{ xs: b.step, ys: b.q50, color: RUN_COLORS[i], width: 1.6, testid: `median-${"ab"[i]}-${k}` }],
        hlines: [{ y: 0 }],
      });
    });
    bandRows.push(
      h("div", { class: "band-row" },
        h("h4", { text: t("train.nonlin", { k: k + 1 }) }),
        h("div", { class: "chart-row" }, ...charts)),
    );
  }
  body.replaceChildren(
    h("div", { class: "run-cards" }, ...chosen.map(describe)),
    h("div", { class: "chart-row" }, lossChart, accChart),
    h("h3", { class: "section-title", text: t("train.dist") }),
    h("p", {
      class: "hint",
    }, ...rich(t("train.dist.hint"))),
    ...(bandRows.length ? bandRows : [h("p", { class: "muted", text: t("train.noacts") })]),
  );
}
