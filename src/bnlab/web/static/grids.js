/* bnlab explorer — Geometry of a traced tensor and its SVG cell grids. */
import { NEUTRAL, MAX_PRINTED, color, sub, f4, tint, h, s } from "./util.js";
import { norm } from "./state.js";

// ---- geometry ------------------------------------------------------------------------------
/** Where every cell of an (N, C, H, W) or (N, F) tensor goes, and which statistics it uses. */
export function geometry(trace) {
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
export function statIndex(geo, k) {
  if (geo.norm === "instance") return [Math.floor(k / geo.C), k % geo.C];
  if (geo.norm === "group") return [Math.floor(k / geo.G), k % geo.G];
  return [k];
}

// ---- tensor grids --------------------------------------------------------------------------
/** The shaded frames of a tensor grid: the cells that share one mean and variance. */
export function frameRects(geo) {
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
export function redrawFrames(svg, geo) {
  for (const f of svg.querySelectorAll("rect.frame")) f.remove();
  svg.prepend(...frameRects(geo));
}
export const cellEls = new Map(); // step name → array of cell <g> by flat index
export const statEls = new Map(); // "mean"/"var" → array by statistic index

export function tensorGrid(step, data, geo, { editable = false } = {}) {
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
        tabindex: editable ? null : 0, // Tab reaches it; Enter pins its calculation
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
export function statGrid(step, data, geo) {
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
      { class: "cell statcell", "data-stat": k, "data-testid": `cell-${step}-${testIdx}`, tabindex: 0 },
      s("rect", { x, y, width: cw, height: ch, fill }),
      s("text", { x: x + cw / 2, y: y + ch / 2 + fontSize * 0.36, "font-size": fontSize.toFixed(1), text: txt }),
    );
    els.push(g);
    svg.append(g);
  }
  statEls.set(step, els);
  return svg;
}
