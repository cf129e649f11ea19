/* bnlab explorer — Every number checked in the page before any request is sent.
 *
 * validate() returns the first problem as {field, key, params} (field as the server names it:
 * "eps", "gamma.1", "shape.2", "values.6", …; key a catalog entry "invalid.*"), or null. */
import { $, sub } from "./util.js";
import { state, layout, norm, mode, readNum } from "./state.js";
import { MAX_ELEMENTS, MAX_SEED, MAX_SIZE } from "./url.js";

const FLOAT32_MAX = 3.4028234663852886e38; // tensors are float32: larger values would become inf
const finite = (v) => v !== null && Number.isFinite(v) && Math.abs(v) <= FLOAT32_MAX;
const raw = (el) => (el ? String(el.value).trim() : "");

export function validate() {
  const fc = layout() === "fc";
  const ids = fc ? ["size-n", "size-c"] : ["size-n", "size-c", "size-h", "size-w"];
  const dims = fc ? ["N", "F"] : ["N", "C", "H", "W"];
  const shape = [];
  for (const [i, id] of ids.entries()) {
    const v = raw($(id));
    const d = Number(v);
    if (v === "" || !Number.isInteger(d) || d < 1 || d > MAX_SIZE)
      return { field: `shape.${i}`, key: "invalid.size", params: { dim: dims[i], i, max: MAX_SIZE, v } };
    shape.push(d);
  }
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel > MAX_ELEMENTS) return { field: "shape", key: "invalid.numel", params: { max: MAX_ELEMENTS, numel } };
  const C = shape[1];
  const batchTrain = norm() === "batch" && mode() === "train";
  if (batchTrain && numel / C < 2) return { field: "shape", key: "invalid.bn1", params: {} };
  if (!state.editing) {
    const v = raw($("seed"));
    const s = Number(v);
    if (v === "" || !Number.isInteger(s) || s < 0 || s > MAX_SEED)
      return { field: "seed", key: "invalid.seed", params: { max: MAX_SEED, v } };
  } else {
    for (const [i, x] of (state.values ?? []).entries()) {
      if (!finite(x)) {
        const el = document.querySelector(`#steps .cell-input[data-i="${i}"]`);
        const at = el?.dataset.testid?.replace("value-", "").replaceAll("-", ", ") ?? String(i);
        return { field: `values.${i}`, key: "invalid.value", params: { i, at, v: raw(el) } };
      }
    }
  }
  const eps = readNum($("eps"));
  if (!(eps !== null && eps > 0 && eps <= 1e3)) return { field: "eps", key: "invalid.eps", params: { v: raw($("eps")) } };
  if (norm() === "batch") {
    const m = readNum($("momentum"));
    if (!(m !== null && m >= 0 && m <= 1))
      return { field: "momentum", key: "invalid.momentum", params: { v: raw($("momentum")) } };
  }
  const kinds = [["gamma", "gamma"], ["beta", "beta"]];
  if (norm() === "batch" && mode() === "eval") kinds.push(["rmean", "running_mean"], ["rvar", "running_var"]);
  for (const [kind, name] of kinds) {
    for (const el of document.querySelectorAll(`input[data-kind=${kind}]`)) {
      const v = readNum(el);
      const i = +el.dataset.c;
      if (!finite(v) || (kind === "rvar" && v < 0))
        return { field: `${name}.${i}`, key: `invalid.${kind}`, params: { i, sub: sub(i), v: raw(el) } };
    }
  }
  if (norm() === "group") {
    const g = Number($("groups").value);
    if (!Number.isInteger(g) || g < 1 || C % g) return { field: "groups", key: "invalid.groups", params: { c: C, v: g } };
  }
  return null;
}
