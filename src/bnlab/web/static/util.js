/* bnlab explorer — Constants, number formatting and DOM helpers shared by every module. */

// ---- constants (PALETTE, HIGHLIGHT, NEUTRAL as in bnlab.explain.figures) --------------------
/** Channel c's colour: the Okabe–Ito palette, safe for colour-blind readers (the figures' list). */
export const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
export const HIGHLIGHT = "#f2b134";
export const NEUTRAL = "#5f6b73";
export const RUN_COLORS = ["#1f77b4", "#d62728"];
export const SVGNS = "http://www.w3.org/2000/svg";
export const DEBOUNCE_MS = 150;
export const MAX_PRINTED = 300; // above this many cells, cells are shaded by value instead of printed
export const EXAMPLE = { layout: "conv", sizes: [2, 2, 2, 2], seed: 0, gamma: [2, 5], beta: [3, 8] };

export const $ = (id) => document.getElementById(id);
export const color = (c) => PALETTE[c % PALETTE.length];
export const SUBS = "₀₁₂₃₄₅₆₇₈₉";
export const sub = (i) => String(i).split("").map((d) => SUBS[+d] ?? d).join("");

// ---- formatting ----------------------------------------------------------------------------
/** Like Python's f"{v:.4f}" (the cells of bnlab's figures), without a "-0.0000". */
export function f4(v) {
  const s = Number(v).toFixed(4);
  return s === "-0.0000" ? "0.0000" : s;
}
/** Like Python's f"{v:g}": 2, 0.1, 1e-05. */
export function fmtG(v) {
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
export const count = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
/** A number after an operator: negative ones in parentheses. */
export const par = (s) => (s.startsWith("-") ? `(${s})` : s);

export function tint(hex, amount) {
  const n = parseInt(hex.slice(1), 16);
  const ch = [(n >> 16) & 255, (n >> 8) & 255, n & 255].map((v) =>
    Math.round(255 - amount * (255 - v)),
  );
  return `rgb(${ch.join(",")})`;
}

// ---- DOM helpers ---------------------------------------------------------------------------
export function h(tag, attrs = {}, ...kids) {
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
export function s(tag, attrs = {}, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}
