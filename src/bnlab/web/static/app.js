/* bnlab explorer: plain JS, no framework. Every change posts the settings to /api/explain
 * (debounced) and redraws the returned trace as SVG cell grids; "feed a batch" calls /api/step;
 * the training view reads /api/runs. Nothing is fetched from any other origin. */
"use strict";

// ---- constants (PALETTE, HIGHLIGHT, NEUTRAL as in bnlab.explain.figures) --------------------
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const HIGHLIGHT = "#f2b134";
const NEUTRAL = "#5f6b73";
const RUN_COLORS = ["#1f77b4", "#d62728"];
const SVGNS = "http://www.w3.org/2000/svg";
const DEBOUNCE_MS = 150;
const MAX_PRINTED = 300; // above this many cells, cells are shaded by value instead of printed
const EXAMPLE = { layout: "conv", sizes: [2, 2, 2, 2], seed: 0, gamma: [2, 5], beta: [3, 8] };

const $ = (id) => document.getElementById(id);
const color = (c) => PALETTE[c % PALETTE.length];
const SUBS = "₀₁₂₃₄₅₆₇₈₉";
const sub = (i) => String(i).split("").map((d) => SUBS[+d] ?? d).join("");

// ---- formatting ----------------------------------------------------------------------------
/** Like Python's f"{v:.4f}" (the cells of bnlab's figures), without a "-0.0000". */
function f4(v) {
  const s = Number(v).toFixed(4);
  return s === "-0.0000" ? "0.0000" : s;
}
/** Like Python's f"{v:g}": 2, 0.1, 1e-05. */
function fmtG(v) {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const exp = Math.floor(Math.log10(Math.abs(Number(v.toPrecision(6)))));
  if (exp < -4 || exp >= 6) {
    const [m, e] = v.toExponential(5).split("e");
    const mant = m.includes(".") ? m.replace(/0+$/, "").replace(/\.$/, "") : m;
    const sign = e[0] === "-" ? "-" : "+";
    return `${mant}e${sign}${e.replace(/^[+-]/, "").padStart(2, "0")}`;
  }
  return String(Number(v.toPrecision(6)));
}
/** "1 group", "2 groups": a count and its noun, singular for one. */
const count = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
/** A number after an operator: negative ones in parentheses. */
const par = (s) => (s.startsWith("-") ? `(${s})` : s);

function tint(hex, amount) {
  const n = parseInt(hex.slice(1), 16);
  const ch = [(n >> 16) & 255, (n >> 8) & 255, n & 255].map((v) =>
    Math.round(255 - amount * (255 - v)),
  );
  return `rgb(${ch.join(",")})`;
}

// ---- DOM helpers ---------------------------------------------------------------------------
function h(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}
function s(tag, attrs = {}, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

// ---- state ---------------------------------------------------------------------------------
const state = {
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
};

function layout() {
  return $("layout").value;
}
function readInt(el) {
  const v = el.value.trim();
  if (v === "") return null;
  const x = Number(v);
  return Number.isFinite(x) ? x : null;
}
function readNum(el) {
  const v = String(el.value).trim().replace("−", "-");
  if (v === "") return null;
  const x = Number(v);
  return Number.isFinite(x) ? x : null;
}
function shapeFromControls() {
  const ids = layout() === "fc" ? ["size-n", "size-c"] : ["size-n", "size-c", "size-h", "size-w"];
  return ids.map((id) => readInt($(id)));
}
function channelCount() {
  const c = readInt($("size-c"));
  return Number.isInteger(c) && c >= 1 && c <= 64 ? c : null;
}
function norm() {
  return $("norm").value;
}
function mode() {
  return document.querySelector("input[name=mode]:checked").value;
}
function perChannel(kind) {
  return [...document.querySelectorAll(`input[data-kind=${kind}]`)].map(readNum);
}

function buildRequest() {
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

// ---- the channel table (γ, β, running statistics) -------------------------------------------
function rebuildChannels() {
  const c = channelCount();
  if (c === null) return;
  const old = { gamma: perChannel("gamma"), beta: perChannel("beta") };
  if (state.running.mean.length !== c) resetRunning(c);
  const eval_ = norm() === "batch" && mode() === "eval";
  const fc = layout() === "fc";
  $("chan-head").replaceChildren(
    h("th", { text: fc ? "feature" : "channel" }),
    h("th", { text: "γ (scale)" }),
    h("th", { text: "β (shift)" }),
  );
  const input = (kind, sym, i, value, testid) =>
    h(
      "td",
      {},
      h(
        "label",
        { class: "chan-input" },
        sym ? h("span", { class: "sym", text: `${sym}${sub(i)}` }) : null,
        h("input", {
          type: "text",
          inputmode: "decimal",
          "data-kind": kind,
          "data-c": i,
          "data-testid": testid,
          "aria-label": `${sym || kind}${sub(i)}`,
          value: value === null || value === undefined ? "" : fmtG(value),
        }),
      ),
    );
  const name = (i) =>
    h(
      "td",
      { class: "chan-name" },
      h("span", { class: "swatch", style: `background:${color(i)}` }),
      `${fc ? "f" : "c"} = ${i}`,
    );
  const rows = [];
  const runRows = [];
  for (let i = 0; i < c; i++) {
    rows.push(
      h(
        "tr",
        {},
        name(i),
        input("gamma", "γ", i, old.gamma[i] ?? 1, `gamma-${i}`),
        input("beta", "β", i, old.beta[i] ?? 0, `beta-${i}`),
      ),
    );
    runRows.push(
      h(
        "tr",
        {},
        name(i),
        input("rmean", "", i, state.running.mean[i], `rmean-${i}`),
        input("rvar", "", i, state.running.var[i], `rvar-${i}`),
      ),
    );
  }
  $("chan-body").replaceChildren(...rows);
  $("run-body").replaceChildren(...runRows);
  $("run-inputs").hidden = !eval_;
  $("chan-hint").textContent = eval_
    ? "eval mode: the running mean and variance replace the batch's μ and σ². Feeding batches (right) updates them."
    : "γ and β are learned per channel: y = γ·x̂ + β.";
  rebuildGroups();
}
function setChannelValues(kind, values) {
  for (const el of document.querySelectorAll(`input[data-kind=${kind}]`)) {
    const v = values[+el.dataset.c];
    if (v !== undefined) el.value = fmtG(v);
  }
}

// ---- groups G of group norm: only divisors of C can be picked --------------------------------
function divisors(c) {
  const out = [];
  for (let d = 1; d <= c; d++) if (c % d === 0) out.push(d);
  return out;
}
/** Divisors of C other than 1 (layer norm) and C (instance norm): a group norm of its own. */
const ownGroups = (c) => divisors(c).filter((d) => d > 1 && d < c);
/** G if it divides C, else the divisor nearest to it, preferring one that is neither 1 nor C. */
function validGroups(c, g) {
  if (c % g === 0) return g;
  const own = ownGroups(c);
  const pool = own.length ? own : divisors(c);
  return pool.reduce((best, d) => (Math.abs(d - g) < Math.abs(best - g) ? d : best));
}
function rebuildGroups(g = readInt($("groups")) ?? 1) {
  const c = channelCount();
  if (c === null) return;
  const fc = layout() === "fc";
  const G = validGroups(c, Math.max(1, g));
  const label = (d) =>
    d === 1 ? "1 (layer)" : d === c ? `${d} (${fc ? "1 feature each" : "instance"})` : String(d);
  $("groups").replaceChildren(...divisors(c).map((d) => h("option", { value: d, text: label(d) })));
  $("groups").value = String(G);
}
/** Picking group norm: with no G but 1 (layer norm) and C (instance norm), C grows until one exists. */
function pickGroupDefaults() {
  const c = channelCount();
  if (c === null) return;
  let wider = c;
  while (!ownGroups(wider).length) wider += 1; // 1, 2, 3 → 4; a prime p → p + 1
  const fc = layout() === "fc";
  const C = fc ? "F" : "C";
  if (wider !== c) {
    $("size-c").value = wider;
    state.groupNote =
      `${C} = ${wider} now (it was ${c}): with ${count(c, fc ? "feature" : "channel")} every G is ` +
      `layer norm (G = 1) or ${fc ? "one feature a group" : "instance norm"} (G = ${c}).`;
  }
  const g = readInt($("groups")) ?? 1;
  rebuildGroups(ownGroups(wider).includes(g) ? g : ownGroups(wider)[0]);
}

// ---- requests ------------------------------------------------------------------------------
function schedule() {
  clearTimeout(state.timer);
  document.body.dataset.pending = "1";
  state.timer = setTimeout(explainNow, DEBOUNCE_MS);
}

async function postJSON(url, body) {
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

async function explainNow() {
  const my = ++state.seq;
  let r;
  try {
    r = await postJSON("/api/explain", buildRequest());
  } catch (e) {
    if (my === state.seq) {
      showError(`cannot reach the bnlab server (${e.message})`, "body");
      document.body.dataset.pending = "0";
    }
    return;
  }
  if (my !== state.seq) return; // a newer request is on its way
  if (r.ok) {
    clearError();
    state.trace = r.data;
    render(r.data);
  } else {
    showError(r.data.detail ?? `HTTP ${r.status}`, r.data.field ?? "body");
  }
  document.body.dataset.pending = "0";
  document.body.dataset.responses = String(Number(document.body.dataset.responses || 0) + 1);
}

// ---- errors --------------------------------------------------------------------------------
const errorEl = h("div", { class: "error", "data-testid": "error", role: "alert" });

function fieldTarget(field) {
  const [root, idx] = String(field || "body").split(".");
  const one = (kind) =>
    idx !== undefined
      ? [...document.querySelectorAll(`input[data-kind=${kind}][data-c="${idx}"]`)]
      : [...document.querySelectorAll(`input[data-kind=${kind}]`)];
  const sizes = ["size-n", "size-c", "size-h", "size-w"].map($);
  switch (root) {
    case "shape":
      return { anchor: $("grp-shape"), inputs: idx !== undefined ? [sizes[+idx]] : sizes };
    case "seed":
      return { anchor: $("grp-seed"), inputs: [$("seed")] };
    case "values": {
      const cell = idx !== undefined ? document.querySelector(`#steps .cell-input[data-i="${idx}"]`) : null;
      return { anchor: $("grp-seed"), inputs: [$("edit-values"), cell].filter(Boolean) };
    }
    case "gamma":
      return { anchor: $("grp-channels").querySelector("table"), inputs: one("gamma") };
    case "beta":
      return { anchor: $("grp-channels").querySelector("table"), inputs: one("beta") };
    case "running_mean":
      return { anchor: $("grp-channels").querySelector("table"), inputs: one("rmean") };
    case "running_var":
      return { anchor: $("grp-channels").querySelector("table"), inputs: one("rvar") };
    case "eps":
      return { anchor: $("eps").closest(".row"), inputs: [$("eps")] };
    case "momentum":
      return { anchor: $("momentum").closest(".row"), inputs: [$("momentum")] };
    case "mode":
      return { anchor: $("grp-mode"), inputs: [...document.querySelectorAll("input[name=mode]")] };
    case "norm":
      return { anchor: $("grp-norm"), inputs: [$("norm")] };
    case "groups":
      return { anchor: $("grp-norm"), inputs: [$("groups")] };
    default:
      return { anchor: $("error-home"), inputs: [] };
  }
}

function showError(detail, field) {
  clearError();
  const { anchor, inputs } = fieldTarget(field);
  errorEl.textContent = detail;
  errorEl.dataset.field = field;
  if (anchor.id === "error-home") anchor.append(errorEl);
  else anchor.after(errorEl);
  for (const el of inputs) el.classList.add("invalid");
  const st = $("status");
  st.hidden = false;
  st.textContent = state.trace
    ? "⚠ not updated: fix the highlighted setting — the pictures show the last valid settings."
    : "⚠ fix the highlighted setting to see the pictures.";
  document.body.dataset.error = "1";
}
function clearError() {
  errorEl.remove();
  for (const el of document.querySelectorAll(".invalid")) el.classList.remove("invalid");
  $("status").hidden = true;
  document.body.dataset.error = "0";
}

// ---- geometry ------------------------------------------------------------------------------
/** Where every cell of an (N, C, H, W) or (N, F) tensor goes, and which statistics it uses. */
function geometry(trace) {
  const shape = trace.steps[0].value.shape;
  const is4 = shape.length === 4;
  const [N, C] = shape;
  const H = is4 ? shape[2] : 1;
  const W = is4 ? shape[3] : 1;
  const numel = N * C * H * W;
  const printed = numel <= MAX_PRINTED;
  const nrm = trace.meta.norm || "batch";
  const G = nrm === "group" ? trace.meta.groups : 1;
  const geo = {
    shape, is4, N, C, H, W, numel, printed, norm: nrm, G,
    cw: printed ? 56 : 13,
    ch: printed ? 24 : 13,
    gap: printed ? (is4 ? 12 : 8) : 6,
    left: 36,
    top: 22,
  };
  geo.bw = W * geo.cw;
  geo.bh = H * geo.ch;
  geo.width = geo.left + C * (geo.bw + geo.gap) - geo.gap + 6;
  geo.height = geo.top + N * (geo.bh + geo.gap) - geo.gap + 6;
  geo.pos = (i) => {
    const w = i % W;
    const hh = Math.floor(i / W) % H;
    const c = Math.floor(i / (W * H)) % C;
    const n = Math.floor(i / (W * H * C));
    return { n, c, h: hh, w };
  };
  geo.stat = (n, c) => {
    if (nrm === "layer") return n;
    if (nrm === "instance") return n * C + c;
    if (nrm === "group") return n * G + Math.floor(c / (C / G));
    return c;
  };
  geo.statOf = (i) => {
    const p = geo.pos(i);
    return geo.stat(p.n, p.c);
  };
  geo.members = new Map();
  for (let i = 0; i < numel; i++) {
    const k = geo.statOf(i);
    if (!geo.members.has(k)) geo.members.set(k, []);
    geo.members.get(k).push(i);
  }
  // the block rectangle (in blocks) each statistic covers
  geo.frames = [];
  const nStats = geo.members.size;
  for (let k = 0; k < nStats; k++) {
    let r;
    if (nrm === "layer") r = { n0: k, n1: k, c0: 0, c1: C - 1 };
    else if (nrm === "instance") r = { n0: Math.floor(k / C), n1: Math.floor(k / C), c0: k % C, c1: k % C };
    else if (nrm === "group") {
      const per = C / G;
      const n = Math.floor(k / G);
      const g = k % G;
      r = { n0: n, n1: n, c0: g * per, c1: g * per + per - 1 };
    } else r = { n0: 0, n1: N - 1, c0: k, c1: k };
    geo.frames.push({ k, ...r });
  }
  geo.idx = (p) => (is4 ? `${p.n}-${p.c}-${p.h}-${p.w}` : `${p.n}-${p.c}`);
  geo.statLabel = (k, withSub = true) => {
    const ix = statIndex(geo, k);
    return withSub ? ix.map(sub).join(",") : ix.join(",");
  };
  return geo;
}
function statIndex(geo, k) {
  if (geo.norm === "instance") return [Math.floor(k / geo.C), k % geo.C];
  if (geo.norm === "group") return [Math.floor(k / geo.G), k % geo.G];
  return [k];
}

// ---- tensor grids --------------------------------------------------------------------------
/** The shaded frames of a tensor grid: the cells that share one mean and variance. */
function frameRects(geo) {
  const { gap, left, top, bw, bh } = geo;
  const bx = (c) => left + c * (bw + gap);
  const by = (n) => top + n * (bh + gap);
  const pad = Math.min(4, gap / 2 - 1);
  return geo.frames.map((f) =>
    s("rect", {
      class: "frame",
      "data-stat": f.k,
      x: bx(f.c0) - pad,
      y: by(f.n0) - pad,
      width: bx(f.c1) + bw - bx(f.c0) + 2 * pad,
      height: by(f.n1) + bh - by(f.n0) + 2 * pad,
      rx: 4,
    }),
  );
}
/** A kept grid (the one being typed in) under another norm: its frames, beneath its cells. */
function redrawFrames(svg, geo) {
  for (const f of svg.querySelectorAll("rect.frame")) f.remove();
  svg.prepend(...frameRects(geo));
}
const cellEls = new Map(); // step name → array of cell <g> by flat index
const statEls = new Map(); // "mean"/"var" → array by statistic index

function tensorGrid(step, data, geo, { editable = false } = {}) {
  const { cw, ch, gap, left, top, bw, bh, N, C } = geo;
  const svg = s("svg", {
    class: "grid",
    width: geo.width,
    height: geo.height,
    viewBox: `0 0 ${geo.width} ${geo.height}`,
    "data-testid": `grid-${step}`,
    role: "img",
    "aria-label": `${step}, shape [${geo.shape.join(", ")}]`,
  });
  const bx = (c) => left + c * (bw + gap);
  const by = (n) => top + n * (bh + gap);
  svg.append(...frameRects(geo));
  for (let c = 0; c < C; c++) {
    svg.append(
      s("text", {
        class: "head",
        x: bx(c) + bw / 2,
        y: top - 9,
        fill: color(c),
        text: `${geo.is4 ? "c" : "f"}=${c}`,
      }),
    );
  }
  for (let n = 0; n < N; n++) {
    svg.append(s("text", { class: "rowhead", x: 4, y: by(n) + bh / 2 + 4, text: `n=${n}` }));
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of data) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const longest = Math.max(...data.map((v) => f4(v).length));
  const fontSize = Math.min(12.5, (cw - 6) / (0.62 * longest));
  const els = [];
  for (let i = 0; i < data.length; i++) {
    const p = geo.pos(i);
    const x = bx(p.c) + p.w * cw;
    const y = by(p.n) + p.h * ch;
    const amount = geo.printed ? 0.2 : 0.12 + 0.7 * (hi > lo ? (data[i] - lo) / (hi - lo) : 0.5);
    const g = s(
      "g",
      {
        class: "cell",
        "data-step": step,
        "data-i": i,
        "data-testid": `cell-${step}-${geo.idx(p)}`,
      },
      s("rect", { x, y, width: cw, height: ch, fill: tint(color(p.c), amount) }),
    );
    if (editable) {
      const fo = s("foreignObject", { x: x + 1, y: y + 1, width: cw - 2, height: ch - 2 });
      const inp = h("input", {
        type: "text",
        inputmode: "decimal",
        class: "cell-input",
        "data-testid": `value-${geo.idx(p)}`,
        "data-i": i,
        "aria-label": `x[${geo.idx(p).replaceAll("-", ", ")}]`,
        value: f4(data[i]),
      });
      fo.append(inp);
      g.append(fo);
    } else if (geo.printed) {
      g.append(
        s("text", {
          x: x + cw / 2,
          y: y + ch / 2 + fontSize * 0.36,
          "font-size": fontSize.toFixed(1),
          text: f4(data[i]),
        }),
      );
    } else {
      g.append(s("title", { text: `[${geo.idx(p).replaceAll("-", ", ")}] = ${f4(data[i])}` }));
    }
    els.push(g);
    svg.append(g);
  }
  cellEls.set(step, els);
  return svg;
}

/** μ or σ²: one cell per statistic, laid out like the statistic's shape. */
function statGrid(step, data, geo) {
  const cw = 56;
  const ch = 24;
  const nrm = geo.norm;
  let rows;
  let cols;
  if (nrm === "batch") [rows, cols] = [1, geo.C];
  else if (nrm === "layer") [rows, cols] = [geo.N, 1];
  else if (nrm === "instance") [rows, cols] = [geo.N, geo.C];
  else [rows, cols] = [geo.N, geo.G];
  const left = rows > 1 || nrm !== "batch" ? 36 : 6;
  const top = nrm === "layer" ? 4 : 20;
  const width = left + cols * (cw + 4) + 4;
  const height = top + rows * (ch + 4) + 2;
  const svg = s("svg", {
    class: "grid stat",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    "data-testid": `grid-${step}`,
  });
  for (let j = 0; j < cols; j++) {
    const label = nrm === "layer" ? "" : nrm === "group" ? `g=${j}` : `${geo.is4 ? "c" : "f"}=${j}`;
    svg.append(
      s("text", {
        class: "head",
        x: left + j * (cw + 4) + cw / 2,
        y: top - 7,
        fill: nrm === "batch" || nrm === "instance" ? color(j) : NEUTRAL,
        text: label,
      }),
    );
  }
  if (left > 6) {
    for (let r = 0; r < rows; r++) {
      svg.append(s("text", { class: "rowhead", x: 4, y: top + r * (ch + 4) + ch / 2 + 4, text: `n=${r}` }));
    }
  }
  const els = [];
  for (let k = 0; k < data.length; k++) {
    const r = Math.floor(k / cols);
    const j = k % cols;
    const x = left + j * (cw + 4);
    const y = top + r * (ch + 4);
    const chan = nrm === "batch" || nrm === "instance" ? j : null;
    const fill = chan === null ? tint(NEUTRAL, 0.18) : tint(color(chan), 0.35);
    const testIdx = statIndex(geo, k).join("-");
    const txt = f4(data[k]);
    const fontSize = Math.min(12.5, (cw - 6) / (0.62 * txt.length));
    const g = s(
      "g",
      { class: "cell statcell", "data-stat": k, "data-testid": `cell-${step}-${testIdx}` },
      s("rect", { x, y, width: cw, height: ch, fill }),
      s("text", { x: x + cw / 2, y: y + ch / 2 + fontSize * 0.36, "font-size": fontSize.toFixed(1), text: txt }),
    );
    els.push(g);
    svg.append(g);
  }
  statEls.set(step, els);
  return svg;
}

// ---- words for the learner -----------------------------------------------------------------
function statWords(geo) {
  const { N, C, H, W, is4, norm: nrm, G } = geo;
  const m = geo.members.get(0).length;
  const c = is4 ? "channel" : "feature";
  const mWords = {
    batch: is4 ? `m = N·H·W = ${N}·${H}·${W} = ${m}` : `m = N = ${m}`,
    layer: is4 ? `m = C·H·W = ${C}·${H}·${W} = ${m}` : `m = F = ${m}`,
    instance: `m = H·W = ${H}·${W} = ${m}`,
    group: is4 ? `m = (C/G)·H·W = ${C / G}·${H}·${W} = ${m}` : `m = F/G = ${m}`,
  }[nrm];
  const mValues = `${mWords} value${m === 1 ? "" : "s"}`; // "m = N·H·W = 2·2·2 = 8 values"
  return {
    m,
    mWords,
    mValues,
    summary: {
      batch: `Batch norm: each ${c} gets one mean μ and one variance σ² over its ${mValues} — from every sample of the batch (the shaded frames).`,
      layer: `Layer norm: each sample n gets its own μ and σ² over its ${mValues}; the other samples play no part.`,
      instance: `Instance norm: each sample's ${c} map gets its own μ and σ² over its ${mValues}.`,
      group: `Group norm: the ${count(C, c)} split into G = ${count(G, "group")}; each sample's group gets its own μ and σ² over ${mValues}.`,
    }[nrm],
    per: {
      batch: `one per ${c} → shape (${is4 ? "C" : "F"},)`,
      layer: "one per sample → shape (N,)",
      instance: `one per sample and ${c} → shape (N, C)`,
      group: "one per sample and group → shape (N, G)",
    }[nrm],
    keep: {
      batch: is4 ? `[1, ${C}, 1, 1]` : `[1, ${C}]`,
      layer: is4 ? `[${N}, 1, 1, 1]` : `[${N}, 1]`,
      instance: `[${N}, ${C}, 1, 1]`,
      group: `[${N}, ${G}, 1] on the (N, G, C/G·H·W) view`,
    }[nrm],
  };
}

const NOTES = {
  x_minus_mean: "Every value minus the mean of its frame: each frame is now centred at 0.",
  xhat: "Divided by √(σ² + ε): each frame now has mean 0 and variance ≈ 1. ε keeps the division safe when σ² ≈ 0.",
  output: "Scaled by γ and shifted by β of the value's channel: the layer can undo the normalization if learning wants it.",
};
const EVAL_NOTES = {
  x_minus_mean: "Every value minus its channel's running mean — not this batch's own mean, so the frames are only roughly centred.",
  xhat: "Divided by √(running var + ε): mean ≈ 0 and variance ≈ 1 only as far as the running statistics match this batch.",
  output: NOTES.output,
};
const SYMBOL = {
  input: "x",
  mean: "μ",
  var: "σ²",
  x_minus_mean: "x − μ",
  xhat: "x̂",
  output: "y",
  running_mean: "",
};

// ---- rendering the trace -------------------------------------------------------------------
function card(num, stepName, title, ...kids) {
  return h(
    "section",
    { class: `card step step-${stepName}`, "data-testid": `step-${stepName}` },
    h("h3", {}, h("span", { class: "num", text: String(num) }), h("span", { class: "sym", text: SYMBOL[stepName] ?? "" }), ` ${title}`),
    ...kids,
  );
}
function formulaLine(text) {
  return h("p", { class: "formula", text });
}
function shapeLine(shape, extra = "") {
  return h("p", { class: "shape", text: `shape [${shape.join(", ")}]${extra}` });
}

function render(trace) {
  const geo = geometry(trace);
  state.geo = geo;
  const steps = Object.fromEntries(trace.steps.map((st) => [st.name, st]));
  const words = statWords(geo);
  const training = trace.training;
  const isBatch = geo.norm === "batch";
  const summary = isBatch && !training
    ? `Batch norm in eval mode: μ and σ² are the stored running statistics, not this batch's — one sample's output no longer depends on the rest of the batch.`
    : words.summary;
  $("summary").replaceChildren(
    h("strong", { text: summary }),
    " Hover a cell to outline where its statistics come from; click it for its calculation.",
  );

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
        state.editing ? "input (type the values)" : "input",
        shapeLine(steps.input.shape, geo.is4 ? " = (N, C, H, W)" : " = (N, F)"),
        h("div", { class: "scroll" }, inputSvg),
        h("p", {
          class: "note",
          text: state.editing
            ? "Click a cell and type a number: every other step follows. \"back to seed\" returns to torch.rand."
            : geo.is4
            ? `Rows: the ${count(geo.N, "sample")} n; columns: the ${count(geo.C, "channel")} c, each H×W = ${geo.H}×${geo.W}. Colour = channel; dashed frames = cells that share one μ and σ².`
            : `Rows: the ${count(geo.N, "sample")} n; columns: the ${count(geo.C, "feature")} f. Colour = feature; dashed frames = cells that share one μ and σ².`,
        }),
      ),
    );
  }

  // 2. μ and σ²
  const meanStep = steps.mean;
  const varStep = steps.var;
  const reduced = meanStep.reduced_axes.length
    ? ` — averaged over dims (${meanStep.reduced_axes.join(", ")}), ${words.mValues} each; kept as ${words.keep} to broadcast`
    : ` — ${words.per}`;
  cards.push(
    card(
      2,
      "mean",
      training ? "mean and variance σ²" : "running mean and running variance",
      h("p", { class: "sub", text: `${training ? "" : "stored, "}${words.per}` }),
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
      const g = trace.weight ? trace.weight.data.map(fmtG).join(", ") : "1 each";
      const b = trace.bias ? trace.bias.data.map(fmtG).join(", ") : "0 each";
      extra = h("p", { class: "sub", text: `with γ = (${g}) and β = (${b}), one per ${geo.is4 ? "channel" : "feature"}` });
    }
    cards.push(
      card(
        num++,
        name,
        st.title,
        formulaLine(st.formula),
        extra,
        h("div", { class: "scroll" }, tensorGrid(name, st.value.data, geo)),
        h("p", { class: "note", text: (training ? NOTES : EVAL_NOTES)[name] }),
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
        "running statistics, kept for eval",
        formulaLine(`running_mean ← ${fmtG(1 - trace.momentum)}·running_mean + ${fmtG(trace.momentum)}·μ`),
        formulaLine(`running_var  ← ${fmtG(1 - trace.momentum)}·running_var + ${fmtG(trace.momentum)}·σ²·${m}/${m - 1}`),
        h(
          "table",
          { class: "running" },
          h("thead", {}, h("tr", {}, h("th", { text: "" }), h("th", { text: "running mean" }), h("th", { text: "running var" }))),
          h("tbody", {}, ...rows),
        ),
        h("p", {
          class: "note",
          text: `Training also updates these buffers (before → after this batch), with momentum ${fmtG(trace.momentum)}; the variance is stored unbiased (·m/(m − 1)). In eval mode they replace μ and σ².`,
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
}

/** The flat index, in this geometry, of the clicked cell's (n, c, h, w); null where it is gone. */
function pinnedIndex(geo) {
  const p = state.selected;
  if (!p || p.rank !== geo.shape.length) return null;
  if (p.n >= geo.N || p.c >= geo.C || p.h >= geo.H || p.w >= geo.W) return null;
  return ((p.n * geo.C + p.c) * geo.H + p.h) * geo.W + p.w;
}

// ---- hover and click -----------------------------------------------------------------------
function clearMarks() {
  for (const e of document.querySelectorAll("#steps .src, #steps .same, #steps .hot")) {
    e.classList.remove("src", "same", "hot");
  }
}
function markCell(i) {
  const geo = state.geo;
  if (!geo || i >= geo.numel) return;
  clearMarks();
  const k = geo.statOf(i);
  for (const j of geo.members.get(k)) cellEls.get("input")?.[j]?.classList.add("src");
  for (const els of cellEls.values()) els[i]?.classList.add("same");
  for (const els of statEls.values()) els[k]?.classList.add("same");
  for (const f of document.querySelectorAll(`#steps .frame[data-stat="${k}"]`)) f.classList.add("hot");
}
function markStat(k) {
  const geo = state.geo;
  if (!geo) return;
  clearMarks();
  for (const j of geo.members.get(k) ?? []) cellEls.get("input")?.[j]?.classList.add("src");
  for (const els of statEls.values()) els[k]?.classList.add("same");
  for (const f of document.querySelectorAll(`#steps .frame[data-stat="${k}"]`)) f.classList.add("hot");
}

function resetCalc() {
  state.selected = null;
  $("calc-close").hidden = true;
  $("calc-card").classList.remove("open");
  $("calc").replaceChildren(
    h("p", {
      class: "hint",
      text: "Click a cell of the output y (or of any grid) to see its whole calculation with its numbers; hover one to outline the input cells its μ and σ² come from.",
    }),
  );
  for (const e of document.querySelectorAll("#steps .picked")) e.classList.remove("picked");
}

function showCalc(i) {
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
  const all = members.length === 1 ? "the 1 cell" : `all ${members.length} cells`;
  const the = `the ${count(members.length, "cell")}`;
  const fromWords = {
    batch: `${all} of ${c === "c" ? "channel" : "feature"} ${p.c}`,
    layer: `${all} of sample ${p.n}`,
    instance: `${the} of sample ${p.n}, ${c === "c" ? "channel" : "feature"} ${p.c}`,
    group: `${the} of sample ${p.n}, group ${Math.floor(p.c / (geo.C / geo.G))}`,
  }[geo.norm];
  const lines = [];
  const line = (testid, label, text) =>
    lines.push(h("div", { class: "eq", "data-testid": testid }, h("span", { class: "eq-label", text: label }), h("code", { text })));
  line("calc-cell", "cell", `[${where}]   x = ${f4(x)}   — statistics from ${fromWords} (outlined)`);
  if (trace.training) {
    line("calc-mean", "mean", `μ${kl} = (1/${members.length})·(${list((j) => f4(xs[j]))}) = ${f4(mu)}`);
    line("calc-var", "variance", `σ²${kl} = (1/${members.length})·(${list((j) => `${par(f4(xs[j] - mu))}²`)}) = ${f4(v)}`);
  } else {
    line("calc-mean", "mean", `μ${kl} = running_mean${kl} = ${f4(mu)}   (stored during training, not this batch's)`);
    line("calc-var", "variance", `σ²${kl} = running_var${kl} = ${f4(v)}`);
  }
  line("calc-xhat", "normalize", `x̂ = (x − μ)/√(σ² + ε) = ${par(f4(xc))}/√(${f4(v)} + ${eps}) = ${f4(xh)}`);
  line(
    "calc-y",
    "output",
    `y = (x − μ_${ix})/√(σ²_${ix} + ε)·γ_${c} + β_${c} = (${f4(x)} − ${par(f4(mu))})/√(${f4(v)} + ${eps})·${par(fmtG(g))} + ${par(fmtG(b))} = ${f4(y)}`,
  );
  $("calc").replaceChildren(...lines);
  $("calc-close").hidden = false;
  $("calc-card").classList.add("open");
  for (const e of document.querySelectorAll("#steps .picked")) e.classList.remove("picked");
  for (const els of cellEls.values()) els[i]?.classList.add("picked");
}

function onStepsOver(ev) {
  const cell = ev.target.closest?.(".cell");
  if (!cell) return;
  if (cell.dataset.i !== undefined) markCell(+cell.dataset.i);
  else if (cell.dataset.stat !== undefined) markStat(+cell.dataset.stat);
}
function onStepsClick(ev) {
  if (ev.target.closest?.("input")) return;
  const cell = ev.target.closest?.(".cell");
  if (!cell || cell.dataset.i === undefined) return;
  const i = +cell.dataset.i;
  state.selected = { rank: state.geo.shape.length, ...state.geo.pos(i) };
  showCalc(i);
}

// ---- editing the input values --------------------------------------------------------------
function resizeValues(oldShape, oldValues, newShape) {
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
function syncValuesToShape() {
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
async function toggleEditing() {
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
  $("edit-values").textContent = state.editing ? "back to seed" : "edit values";
  $("edit-values").classList.toggle("on", state.editing);
  $("seed").disabled = state.editing;
  $("seed-hint").textContent = state.editing
    ? "x = the values you type into the input cells"
    : "x = torch.rand(shape) after torch.manual_seed(seed)";
  // drop the old input grid so that the next render draws the right kind
  document.querySelector("#steps .step-input")?.remove();
  cellEls.delete("input");
  schedule();
}
function onValueInput(ev) {
  const el = ev.target;
  if (!el.classList.contains("cell-input")) return;
  const v = readNum(el);
  state.values[+el.dataset.i] = v;
  schedule();
}

// ---- running statistics over many batches ---------------------------------------------------
function resetRunning(c) {
  state.running = {
    mean: new Array(c).fill(0),
    var: new Array(c).fill(1),
    step: 0,
    history: [{ step: 0, mean: new Array(c).fill(0), batch: null }],
  };
  setChannelValues("rmean", state.running.mean);
  setChannelValues("rvar", state.running.var);
  drawRunning();
}

async function feed(times) {
  for (let t = 0; t < times; t++) {
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
      showError(`cannot reach the bnlab server (${e.message})`, "body");
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
    state.running.history.push({ step: d.step, mean: d.running_mean.slice(), batch: d.batch_mean });
  }
  setChannelValues("rmean", state.running.mean);
  setChannelValues("rvar", state.running.var);
  drawRunning();
  schedule();
}

function drawRunning() {
  const r = state.running;
  const c = r.mean.length;
  $("feed-step").textContent = `step ${r.step}`;
  const vals = [];
  for (let i = 0; i < c; i++) {
    vals.push(
      h(
        "span",
        { class: "rv" },
        h("span", { class: "swatch", style: `background:${color(i)}` }),
        `${i}: mean `,
        h("b", { "data-testid": `running-mean-${i}`, text: f4(r.mean[i]) }),
        " var ",
        h("b", { "data-testid": `running-var-${i}`, text: f4(r.var[i]) }),
      ),
    );
  }
  $("running-values").replaceChildren(...vals);
  const hist = r.history;
  const xmax = Math.max(5, r.step);
  const series = [];
  const dots = [];
  for (let i = 0; i < c; i++) {
    series.push({ xs: hist.map((p) => p.step), ys: hist.map((p) => p.mean[i]), color: color(i), marker: hist.length < 40 });
    const withBatch = hist.filter((p) => p.batch);
    dots.push({ xs: withBatch.map((p) => p.step), ys: withBatch.map((p) => p.batch[i]), color: color(i) });
  }
  const allY = [0, 0.6, ...hist.flatMap((p) => [...p.mean, ...(p.batch ?? [])])];
  const svg = lineChart({
    width: 420,
    height: 190,
    testid: "running-chart",
    xdom: [0, xmax],
    ydom: [Math.min(...allY), Math.max(...allY)],
    xlabel: "batches fed (step)",
    integerX: true,
    ylabel: "running mean",
    lines: series,
    dots,
    hlines: [{ y: 0.5, label: "population mean 0.5" }],
  });
  $("running-chart-box").replaceChildren(
    svg,
    h("p", { class: "hint", text: "lines: running mean per channel; hollow dots: that batch's own mean." }),
  );
}

// ---- charts --------------------------------------------------------------------------------
function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) ?? 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}
function tickText(v) {
  if (Math.abs(v) >= 1000) return `${Math.round(v / 100) / 10}k`;
  return String(Number(v.toPrecision(4)));
}

/** A small SVG chart: lines, dots, bands (filled between lo and hi) and dashed guides. */
function lineChart(o) {
  const W = o.width ?? 420;
  const H = o.height ?? 220;
  const m = { l: 50, r: 14, t: o.title ? 26 : 12, b: 36 };
  let [x0, x1] = o.xdom;
  let [y0, y1] = o.ydom;
  if (!(x1 > x0)) x1 = x0 + 1;
  if (!(y1 > y0)) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const ypad = (y1 - y0) * 0.06;
  y0 -= ypad;
  y1 += ypad;
  const X = (v) => m.l + ((v - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (v) => H - m.b - ((v - y0) / (y1 - y0)) * (H - m.t - m.b);
  const svg = s("svg", { class: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`, "data-testid": o.testid, role: "img", "aria-label": o.title ?? o.ylabel ?? "" });
  if (o.title) svg.append(s("text", { class: "chart-title", x: m.l, y: 16, text: o.title }));
  for (const t of niceTicks(y0, y1, 4)) {
    svg.append(s("line", { class: "gridline", x1: m.l, x2: W - m.r, y1: Y(t), y2: Y(t) }));
    svg.append(s("text", { class: "tick", x: m.l - 6, y: Y(t) + 4, "text-anchor": "end", text: tickText(t) }));
  }
  for (const t of niceTicks(x0, x1, 5)) {
    if (o.integerX && !Number.isInteger(t)) continue;
    svg.append(s("line", { class: "tickmark", x1: X(t), x2: X(t), y1: H - m.b, y2: H - m.b + 4 }));
    svg.append(s("text", { class: "tick", x: X(t), y: H - m.b + 16, "text-anchor": "middle", text: tickText(t) }));
  }
  svg.append(s("line", { class: "axis", x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
  svg.append(s("line", { class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
  if (o.xlabel) svg.append(s("text", { class: "axis-label", x: (m.l + W - m.r) / 2, y: H - 4, "text-anchor": "middle", text: o.xlabel }));
  if (o.ylabel) svg.append(s("text", { class: "axis-label", x: 12, y: (m.t + H - m.b) / 2, transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})`, "text-anchor": "middle", text: o.ylabel }));
  for (const b of o.bands ?? []) {
    if (!b.xs.length) continue;
    const up = b.xs.map((x, i) => `${X(x).toFixed(1)},${Y(b.hi[i]).toFixed(1)}`);
    const down = b.xs.map((x, i) => `${X(x).toFixed(1)},${Y(b.lo[i]).toFixed(1)}`).reverse();
    svg.append(s("path", { class: "band", d: `M${up.join("L")}L${down.join("L")}Z`, fill: b.color, "fill-opacity": 0.22, stroke: "none", "data-testid": b.testid }));
  }
  for (const g of o.hlines ?? []) {
    svg.append(s("line", { class: "guide", x1: m.l, x2: W - m.r, y1: Y(g.y), y2: Y(g.y) }));
    if (g.label) svg.append(s("text", { class: "guide-label", x: m.l + 6, y: Y(g.y) + 14, text: g.label }));
  }
  for (const l of o.lines ?? []) {
    const pts = l.xs.map((x, i) => [x, l.ys[i]]).filter(([, y]) => y !== null && y !== undefined && Number.isFinite(y));
    if (!pts.length) continue;
    svg.append(s("path", {
      class: "line",
      d: `M${pts.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join("L")}`,
      stroke: l.color,
      "stroke-width": l.width ?? 2,
      "stroke-dasharray": l.dash ? "6 4" : null,
      fill: "none",
      "data-testid": l.testid,
    }));
    if (l.marker) for (const [x, y] of pts) svg.append(s("circle", { cx: X(x), cy: Y(y), r: 2.8, fill: l.color }));
  }
  for (const d of o.dots ?? []) {
    d.xs.forEach((x, i) => svg.append(s("circle", { class: "dot", cx: X(x), cy: Y(d.ys[i]), r: 3.2, stroke: d.color, fill: "white" })));
  }
  if (o.legend?.length) {
    const bottom = o.legendAt === "bottom-right";
    let ly = bottom ? H - m.b - 10 - 15 * (o.legend.length - 1) : m.t + 4;
    const lx = W - m.r - 10 - Math.max(...o.legend.map((e) => 7 * e.label.length)) - 30;
    svg.append(s("rect", { class: "legend-box", x: lx - 6, y: ly - 9, width: W - m.r - lx, height: 15 * o.legend.length + 3, fill: "white", "fill-opacity": 0.85 }));
    for (const e of o.legend) {
      svg.append(s("line", { x1: lx, x2: lx + 22, y1: ly, y2: ly, stroke: e.color, "stroke-width": e.band ? 8 : 2, "stroke-opacity": e.band ? 0.3 : 1, "stroke-dasharray": e.dash ? "6 4" : null }));
      svg.append(s("text", { class: "legend", x: lx + 28, y: ly + 4, text: e.label }));
      ly += 15;
    }
  }
  return svg;
}

// ---- the training view ---------------------------------------------------------------------
const training = { loaded: false, runs: [], root: null };

async function loadRuns() {
  let data;
  try {
    const res = await fetch("/api/runs");
    data = await res.json();
  } catch (e) {
    $("runs-empty").hidden = false;
    $("runs-empty").textContent = `cannot read the runs (${e.message})`;
    return;
  }
  const a = $("run-a");
  const b = $("run-b");
  const before = training.loaded ? { a: a.value, b: b.value } : null; // a reload keeps the picks
  training.loaded = true;
  training.runs = data.runs ?? [];
  training.root = data.root;
  const names = training.runs.map((r) => r.name);
  a.replaceChildren(...names.map((n) => h("option", { value: n, text: n })));
  b.replaceChildren(h("option", { value: "", text: "(none)" }), ...names.map((n) => h("option", { value: n, text: n })));
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
  $("runs-root").textContent = training.root ? `runs from ${training.root}` : "";
  drawTraining();
}

function drawTraining() {
  const body = $("runs-body");
  const empty = $("runs-empty");
  if (!training.runs.length) {
    body.replaceChildren();
    empty.hidden = false;
    empty.replaceChildren(
      h("strong", { text: "no runs found" }),
      h("p", {
        text: training.root
          ? `No folder under ${training.root} holds a metrics.jsonl. Train some with "bnlab train RECIPE", then reload.`
          : 'The committed runs (docs/results) were not found: start the server with "bnlab serve --runs DIR".',
      }),
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
      h("h3", { style: `color:${RUN_COLORS[i]}`, text: run.name }),
      h("p", { text: cfg.note || "" }),
      h("p", {
        class: "muted",
        text: [
          cfg.model && `model ${cfg.model}`,
          `BN: ${cfg.bn ?? "none"}`,
          cfg.lr !== undefined && `lr ${cfg.lr}`,
          `${run.metrics.length} epoch${run.metrics.length === 1 ? "" : "s"}`,
          last && `final test acc ${(100 * last.test_acc).toFixed(2)} %`,
        ].filter(Boolean).join(" · "),
      }),
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
  const legend = chosen.map((r, i) => ({ label: r.name, color: RUN_COLORS[i] }));
  const lossChart = lineChart({
    width: 600, height: 240, testid: "chart-loss", title: "train loss per epoch",
    xdom, ydom: [Math.min(0, ...losses), Math.max(0.1, ...losses)], xlabel: "epoch", ylabel: "loss",
    integerX: true, lines: lossLines, legend,
  });
  const accChart = lineChart({
    width: 600, height: 240, testid: "chart-acc", legendAt: "bottom-right", title: "accuracy per epoch (dashed: train, solid: test)",
    xdom, ydom: [Math.min(...accs, 1), Math.max(...accs, 0)], xlabel: "epoch", ylabel: "accuracy",
    integerX: true, lines: accLines,
    legend: [...legend, { label: "train", color: "#555", dash: true }, { label: "test", color: "#555" }],
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
      if (!b) return h("div", { class: "chart-missing", text: `${r.name}: no layer #${k + 1}` });
      return lineChart({
        width: 600, height: 210, testid: `bands-${"ab"[i]}-${k}`,
        title: `${r.name} — layer "${layerNames[i][k]}"`,
        xdom: xdomB, ydom, xlabel: "training step", ylabel: "pre-activation", integerX: true,
        bands: [{ xs: b.step, lo: b.q15, hi: b.q85, color: RUN_COLORS[i], testid: `band-${"ab"[i]}-${k}` }],
        lines: [{ xs: b.step, ys: b.q50, color: RUN_COLORS[i], width: 1.6, testid: `median-${"ab"[i]}-${k}` }],
        hlines: [{ y: 0 }],
      });
    });
    bandRows.push(
      h("div", { class: "band-row" },
        h("h4", { text: `nonlinearity #${k + 1}: its input, channel 0` }),
        h("div", { class: "chart-row" }, ...charts)),
    );
  }
  body.replaceChildren(
    h("div", { class: "run-cards" }, ...chosen.map(describe)),
    h("div", { class: "chart-row" }, lossChart, accChart),
    h("h3", { class: "section-title", text: "Distribution of pre-activations over training" }),
    h("p", {
      class: "hint",
      text: "Per layer, the 15th–85th percentile band (shaded) and the median (line) of the input to each sigmoid/ReLU, channel 0, as training goes on — the BN paper's Figure 1(b, c). Both charts of a row share one y-scale: compare how far the band drifts with and without BN.",
    }),
    ...(bandRows.length ? bandRows : [h("p", { class: "muted", text: "no activation records in these runs" })]),
  );
}

// ---- tabs ----------------------------------------------------------------------------------
function showTab(name) {
  for (const t of ["explorer", "training"]) {
    const on = t === name;
    $(`tab-${t}`).classList.toggle("active", on);
    $(`tab-${t}`).setAttribute("aria-selected", String(on));
    $(`view-${t}`).hidden = !on;
  }
  if (name === "training" && !training.loaded) loadRuns();
}

// ---- wiring --------------------------------------------------------------------------------
function syncVisibility() {
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
  $("norm-hint").textContent = (fc
    ? {
        batch: "one μ, σ² per feature, over the batch (N)",
        layer: "one μ, σ² per sample, over its features (F)",
        instance: "instance norm needs (N, C, H, W)",
        group: "one μ, σ² per sample and group of F/G features",
      }
    : {
        batch: "one μ, σ² per channel, over the whole batch (N, H, W)",
        layer: "one μ, σ² per sample, over (C, H, W)",
        instance: "one μ, σ² per sample and channel, over (H, W)",
        group: "one μ, σ² per sample and group of C/G channels",
      })[nrm];
  $("group-note").hidden = !(nrm === "group" && state.groupNote);
  $("group-note").textContent = state.groupNote ?? "";
}

function setExample() {
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

function init() {
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
  explainNow();
}

document.addEventListener("DOMContentLoaded", init);
