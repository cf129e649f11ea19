/* bnlab explorer — A small SVG line chart. */
import { s } from "./util.js";

// ---- charts --------------------------------------------------------------------------------
export function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) ?? 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}
export function tickText(v) {
  if (Math.abs(v) >= 1000) return `${Math.round(v / 100) / 10}k`;
  return String(Number(v.toPrecision(4)));
}

/** A small SVG chart: lines, dots, bands (filled between lo and hi) and dashed guides. */
export function lineChart(o) {
  const W = o.width ?? 420;
  const H = o.height ?? 220;
  // a guide labelled on the right gets a margin of its own: its label never covers the data
  const rightLabels = (o.hlines ?? []).some((g) => g.side === "right" && g.label);
  const m = { l: 50, r: rightLabels ? 66 : 14, t: o.title || o.titleData ? 26 : 12, b: 36 };
  let [x0, x1] = o.xdom;
  let [y0, y1] = o.ydom;
  if (!(x1 > x0)) x1 = x0 + 1;
  if (!(y1 > y0)) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const ypad = (y1 - y0) * 0.06;
  y0 -= ypad;
  y1 += ypad;
  const X = (v) => m.l + ((v - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (v) => H - m.b - ((v - y0) / (y1 - y0)) * (H - m.t - m.b);
  const svg = s("svg", { class: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`, "data-testid": o.testid, role: "img", "aria-label": `${o.titleData ?? ""}${o.title ?? o.ylabel ?? ""}` });
  if (o.title || o.titleData) {
    // titleData (a run's name) is data, not words: never translated
    const title = s("text", { class: "chart-title", x: m.l, y: 16 });
    if (o.titleData) title.append(s("tspan", { translate: "no", text: o.titleData }));
    // `…` in a title is data too (a layer's name)
    if (o.title) String(o.title).split("`").forEach((text, i) => text && title.append(s("tspan", { text, translate: i % 2 ? "no" : null })));
    svg.append(title);
  }
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
    if (!g.label) continue;
    if (g.side === "right") {
      const lines = [g.label].flat();
      const y = Y(g.y) - 6 * (lines.length - 1) + 4;
      const label = s("text", { class: "guide-label", x: W - m.r + 6, y });
      lines.forEach((text, i) => label.append(s("tspan", { x: W - m.r + 6, dy: i ? 12 : 0, text })));
      svg.append(label);
    } else svg.append(s("text", { class: "guide-label", x: m.l + 6, y: Y(g.y) + 14, text: g.label }));
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
      svg.append(s("text", { class: "legend", x: lx + 28, y: ly + 4, text: e.label, translate: e.data ? "no" : null }));
      ly += 15;
    }
  }
  return svg;
}
