/* bnlab explorer — Requests to the bnlab server (same origin only). */
import { DEBOUNCE_MS } from "./util.js";
import { state, buildRequest } from "./state.js";
import { showError, clearError } from "./errors.js";
import { render } from "./steps.js";
import { writeURL } from "./url.js";
import { validate } from "./validate.js";

// ---- requests ------------------------------------------------------------------------------
export function schedule() {
  clearTimeout(state.timer);
  document.body.dataset.pending = "1";
  state.timer = setTimeout(explainNow, DEBOUNCE_MS);
  writeURL();
}

export async function postJSON(url, body) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = { detail: `HTTP ${res.status}`, field: "body" };
  }
  return { ok: res.ok, status: res.status, data };
}

export async function explainNow() {
  const my = ++state.seq;
  const invalid = validate();
  if (invalid) {
    // caught in the page: no request, the message next to its field
    showError({ key: invalid.key, params: invalid.params }, invalid.field);
    document.body.dataset.pending = "0";
    return;
  }
  let r;
  let base = null;
  try {
    const body = buildRequest();
    r = await postJSON("/api/explain", body);
    if (r.ok && state.perturb && body.shape[0] >= 2) {
      // the same batch with sample n = 1 changed (+1 on every value): what moves in sample 0?
      base = r.data;
      const x = base.steps[0].value.data;
      const per = x.length / body.shape[0];
      const values = x.map((v, i) => (i >= per && i < 2 * per ? v + 1 : v));
      r = await postJSON("/api/explain", { ...body, values });
    }
  } catch (e) {
    if (my === state.seq) {
      showError({ key: "error.server", params: { msg: e.message } }, "body");
      document.body.dataset.pending = "0";
    }
    return;
  }
  if (my !== state.seq) return; // a newer request is on its way
  if (r.ok) {
    clearError();
    state.trace = r.data;
    state.baseTrace = base;
    render(r.data);
  } else {
    showError(r.data.detail ?? `HTTP ${r.status}`, r.data.field ?? "body");
  }
  document.body.dataset.pending = "0";
  document.body.dataset.responses = String(Number(document.body.dataset.responses || 0) + 1);
}
