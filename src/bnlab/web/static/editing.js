/* bnlab explorer — Typing the input values in. */
import { $ } from "./util.js";
import { t, rich } from "./i18n.js";
import { state, readNum, shapeFromControls } from "./state.js";
import { schedule, explainNow } from "./api.js";
import { cellEls } from "./grids.js";

// ---- editing the input values --------------------------------------------------------------
export function resizeValues(oldShape, oldValues, newShape) {
  const dims = (sh) => (sh.length === 4 ? sh : [sh[0], sh[1], 1, 1]);
  const [n0, c0, h0, w0] = dims(oldShape);
  const [n1, c1, h1, w1] = dims(newShape);
  const out = new Array(n1 * c1 * h1 * w1).fill(0.5);
  for (let n = 0; n < Math.min(n0, n1); n++)
    for (let c = 0; c < Math.min(c0, c1); c++)
      for (let hh = 0; hh < Math.min(h0, h1); hh++)
        for (let w = 0; w < Math.min(w0, w1); w++)
          out[((n * c1 + c) * h1 + hh) * w1 + w] = oldValues[((n * c0 + c) * h0 + hh) * w0 + w];
  return out;
}
export function syncValuesToShape() {
  if (!state.editing) return;
  const shape = shapeFromControls();
  if (!shape.every((d) => Number.isInteger(d) && d >= 1 && d <= 64)) return;
  const key = shape.join(",");
  if (key === state.valuesShape) return;
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel > 4096) return;
  state.values = resizeValues(state.valuesShape.split(",").map(Number), state.values, shape);
  state.valuesShape = key;
}
export async function toggleEditing() {
  if (state.toggling) return;
  if (!state.editing) {
    if (document.body.dataset.pending === "1") {
      // a change is not drawn yet: edit the input of the current settings, not of the last drawn
      state.toggling = true;
      clearTimeout(state.timer);
      try {
        await explainNow();
      } finally {
        state.toggling = false;
      }
    }
    const shape = shapeFromControls();
    const tr = state.trace;
    if (tr && tr.steps[0].value.shape.join(",") === shape.join(",")) {
      // the exact float32 values: drawn to 4 decimals, sent as they are until one is typed
      state.values = tr.steps[0].value.data.slice();
    } else if (shape.every((d) => Number.isInteger(d) && d >= 1)) {
      state.values = new Array(shape.reduce((a, b) => a * b, 1)).fill(0.5);
    } else return;
    state.editing = true;
    state.valuesShape = shape.join(",");
  } else {
    state.editing = false;
    state.values = null;
    state.valuesShape = null;
  }
  syncEditingUI();
  // drop the old input grid so that the next render draws the right kind
  document.querySelector("#steps .step-input")?.remove();
  cellEls.delete("input");
  schedule();
}
export function onValueInput(ev) {
  const el = ev.target;
  if (!el.classList.contains("cell-input")) return;
  const v = readNum(el);
  state.values[+el.dataset.i] = v;
  schedule();
}

/** The "edit values" button, the seed and its hint say whether the values are typed. */
export function syncEditingUI() {
  $("edit-values").textContent = t(state.editing ? "edit.back" : "edit");
  $("edit-values").classList.toggle("on", state.editing);
  $("seed").disabled = state.editing;
  $("seed-hint").replaceChildren(...rich(t(state.editing ? "seed.hint.typed" : "seed.hint")));
}
