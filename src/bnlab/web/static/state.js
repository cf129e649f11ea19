/* bnlab explorer — The explorer's state and what the controls say. */
import { $ } from "./util.js";

// ---- state ---------------------------------------------------------------------------------
export const state = {
  editing: false,
  values: null, // the typed input values (flat, row-major) while editing
  valuesShape: null,
  trace: null, // the last good trace
  geo: null,
  selected: null, // the clicked cell: {rank, n, c, h, w}, kept across redraws while it exists
  groupNote: null, // why C changed when group norm was picked, shown until C or the norm changes
  toggling: false, // "edit values" is waiting for the current settings' input
  running: { mean: [0, 0], var: [1, 1], step: 0, history: [] },
  seq: 0,
  timer: null,
  feedCard: null, // the "feed a batch" card, kept across redraws
  lang: "en", // the page's language: "en" or "zh"
  tab: "explorer", // the view shown: "explorer" or "training"
  step: 0, // the stepper's step, 1 … 5; 0 when not stepping
  urlReady: false, // the link has been read: from now on every change is written back
  urlBad: [], // the parameters of the link that were ignored: [{name, value, why}]
  perturb: false, // "change sample n = 1": every value of sample 1 gets +1
  baseTrace: null, // with perturb: the trace of the unchanged batch, to compare sample 0 with
};

export function layout() {
  return $("layout").value;
}
export function readInt(el) {
  const v = el.value.trim();
  if (v === "") return null;
  const x = Number(v);
  return Number.isFinite(x) ? x : null;
}
export function readNum(el) {
  const v = String(el.value).trim().replace("−", "-");
  if (v === "") return null;
  const x = Number(v);
  return Number.isFinite(x) ? x : null;
}
export function shapeFromControls() {
  const ids = layout() === "fc" ? ["size-n", "size-c"] : ["size-n", "size-c", "size-h", "size-w"];
  return ids.map((id) => readInt($(id)));
}
export function channelCount() {
  const c = readInt($("size-c"));
  return Number.isInteger(c) && c >= 1 && c <= 64 ? c : null;
}
export function norm() {
  return $("norm").value;
}
export function mode() {
  return document.querySelector("input[name=mode]:checked").value;
}
export function perChannel(kind) {
  return [...document.querySelectorAll(`input[data-kind=${kind}]`)].map(readNum);
}

export function buildRequest() {
  const body = {
    shape: shapeFromControls(),
    seed: readInt($("seed")),
    gamma: perChannel("gamma"),
    beta: perChannel("beta"),
    eps: readNum($("eps")),
    norm: norm(),
    groups: norm() === "group" ? readInt($("groups")) : 1,
    mode: norm() === "batch" ? mode() : "train",
    momentum: readNum($("momentum")),
  };
  if (norm() === "batch") {
    body.running_mean = state.running.mean.slice();
    body.running_var = state.running.var.slice();
  }
  if (state.editing) body.values = state.values.slice();
  return body;
}
