/* bnlab explorer: plain JS modules, no framework. Every change posts the settings to /api/explain
 * (debounced) and redraws the returned trace as SVG cell grids; "feed a batch" calls /api/step;
 * the training view reads /api/runs. Nothing is fetched from any other origin. This module: tabs,
 * language, visibility of the controls, and wiring. */
import { EXAMPLE, $ } from "./util.js";
import { state, layout, readNum, norm, mode } from "./state.js";
import { rebuildChannels, setChannelValues, rebuildGroups, pickGroupDefaults } from "./channels.js";
import { schedule, explainNow } from "./api.js";
import { clearMarks, resetCalc, onStepsOver, onStepsClick, onStepsKey } from "./drawer.js";
import { syncValuesToShape, toggleEditing, onValueInput, syncEditingUI } from "./editing.js";
import { resetRunning, feed, drawRunning } from "./running.js";
import { training, loadRuns, drawTraining } from "./training.js";
import { applyParams, writeURL, showURLNote } from "./url.js";
import { t, translateStatic } from "./i18n.js";
import { render } from "./steps.js";
import { redrawError } from "./errors.js";
import { drawStep, setStep, onStepKey } from "./stepper.js";

// ---- tabs ----------------------------------------------------------------------------------
export function showTab(name) {
  state.tab = name;
  for (const t of ["explorer", "training"]) {
    const on = t === name;
    $(`tab-${t}`).classList.toggle("active", on);
    $(`tab-${t}`).setAttribute("aria-selected", String(on));
    $(`view-${t}`).hidden = !on;
  }
  if (name === "training" && !training.loaded) loadRuns();
  writeURL();
}

// ---- wiring --------------------------------------------------------------------------------
export function syncVisibility() {
  const fc = layout() === "fc";
  for (const e of document.querySelectorAll(".spatial")) e.hidden = fc;
  $("c-label").textContent = fc ? "F" : "C";
  const nrm = norm();
  $("grp-groups").hidden = nrm !== "group";
  const instanceOpt = $("norm").querySelector("option[value=instance]");
  instanceOpt.disabled = fc;
  const batch = nrm === "batch";
  for (const r of document.querySelectorAll("input[name=mode]")) r.disabled = !batch && r.value === "eval";
  if (!batch && mode() === "eval") document.querySelector("input[name=mode][value=train]").checked = true;
  $("grp-momentum").hidden = !batch;
  state.feedCard.hidden = !batch;
  $("norm-hint").textContent = t(`norm.hint.${fc ? "fc" : "conv"}.${nrm}`);
  $("group-note").hidden = !(nrm === "group" && state.groupNote);
  $("group-note").textContent = state.groupNote ? t("group.note", state.groupNote) : "";
}

export function setExample() {
  if (state.editing) toggleEditing();
  $("layout").value = EXAMPLE.layout;
  ["size-n", "size-c", "size-h", "size-w"].forEach((id, i) => ($(id).value = EXAMPLE.sizes[i]));
  $("seed").value = EXAMPLE.seed;
  $("norm").value = "batch";
  state.groupNote = null;
  document.querySelector("input[name=mode][value=train]").checked = true;
  $("eps").value = "1e-5";
  $("momentum").value = "0.1";
  $("chan-body").replaceChildren();
  rebuildChannels();
  rebuildGroups(1);
  setChannelValues("gamma", EXAMPLE.gamma);
  setChannelValues("beta", EXAMPLE.beta);
  resetRunning(EXAMPLE.gamma.length);
  state.selected = null;
  syncVisibility();
}

export function init() {
  state.feedCard = $("feed-card");
  document.body.dataset.pending = "1";
  document.body.dataset.responses = "0";
  setExample();
  $("tab-explorer").addEventListener("click", () => showTab("explorer"));
  $("tab-training").addEventListener("click", () => showTab("training"));
  $("layout").addEventListener("change", () => {
    syncVisibility();
    rebuildChannels(); // "channel" ↔ "feature" in the table
    syncValuesToShape();
    schedule();
  });
  for (const id of ["size-n", "size-h", "size-w"]) {
    $(id).addEventListener("input", () => {
      syncValuesToShape();
      schedule();
    });
  }
  $("size-c").addEventListener("input", () => {
    state.groupNote = null;
    syncVisibility();
    rebuildChannels();
    syncValuesToShape();
    schedule();
  });
  $("seed").addEventListener("input", schedule);
  $("edit-values").addEventListener("click", toggleEditing);
  $("norm").addEventListener("change", () => {
    state.groupNote = null;
    if (norm() === "group") pickGroupDefaults(); // may change C
    syncVisibility();
    rebuildChannels();
    syncValuesToShape();
    schedule();
  });
  $("groups").addEventListener("change", schedule);
  for (const r of document.querySelectorAll("input[name=mode]")) {
    r.addEventListener("change", () => {
      syncVisibility();
      rebuildChannels();
      schedule();
    });
  }
  $("eps").addEventListener("input", schedule);
  $("momentum").addEventListener("input", schedule);
  const onChannelInput = (ev) => {
    const el = ev.target;
    const kind = el.dataset.kind;
    if (kind === "rmean" || kind === "rvar") {
      const v = readNum(el);
      (kind === "rmean" ? state.running.mean : state.running.var)[+el.dataset.c] = v;
    }
    schedule();
  };
  $("chan-body").addEventListener("input", onChannelInput);
  $("run-body").addEventListener("input", onChannelInput);
  $("reset").addEventListener("click", () => {
    setExample();
    schedule();
  });
  const steps = $("steps");
  steps.addEventListener("mouseover", onStepsOver);
  steps.addEventListener("mouseleave", clearMarks);
  steps.addEventListener("click", onStepsClick);
  steps.addEventListener("input", onValueInput);
  $("calc-close").addEventListener("click", resetCalc);
  $("feed").addEventListener("click", () => feed(1));
  $("feed10").addEventListener("click", () => feed(10));
  $("feed-reset").addEventListener("click", () => {
    resetRunning(state.running.mean.length);
    schedule();
  });
  $("run-a").addEventListener("change", drawTraining);
  $("run-b").addEventListener("change", drawTraining);
  $("runs-reload").addEventListener("click", loadRuns);
  // the link's state over the example's, then the link follows every change
  state.urlBad = applyParams(location.search);
  $("step-toggle").addEventListener("click", () => setStep(state.step ? 0 : 1));
  $("step-prev").addEventListener("click", () => setStep(state.step - 1));
  $("step-next").addEventListener("click", () => setStep(state.step + 1));
  document.addEventListener("keydown", onStepKey);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && $("calc-card").classList.contains("open")) resetCalc();
  });
  steps.addEventListener("keydown", onStepsKey);
  steps.addEventListener("focusin", onStepsOver);
  $("perturb").addEventListener("change", () => {
    state.perturb = $("perturb").checked;
    schedule();
  });
  $("lang").addEventListener("click", () => setLang(state.lang === "zh" ? "en" : "zh"));
  setLang(state.lang, { draw: false });
  syncVisibility();
  showURLNote();
  showTab(state.tab);
  state.urlReady = true;
  writeURL();
  explainNow();
}

document.addEventListener("DOMContentLoaded", init);

/** Show the page in ``lang`` ("en" or "zh"): every string is redrawn, no number changes. */
export function setLang(lang, { draw = true } = {}) {
  state.lang = lang;
  translateStatic();
  syncEditingUI();
  rebuildChannels();
  syncVisibility();
  showURLNote();
  drawRunning();
  drawStep({ animate: false });
  if (!draw) return;
  redrawError();
  if (state.trace) {
    // the input grid is kept while typing; here it is drawn again, in the new words
    if (!document.activeElement?.classList.contains("cell-input")) {
      document.querySelector("#steps .step-input")?.remove();
    }
    render(state.trace);
  }
  if (training.loaded) drawTraining();
  writeURL();
}
