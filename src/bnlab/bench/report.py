"""The benchmark's results as a table (text or Markdown), with the targets checked.

Targets, for training-mode forward+backward, warm, float32 contiguous:

* fused ≤ 0.75 × torch on every conv shape, ≤ 1.0 × torch on the fully connected ones;
* on the large shapes, fused within 2 × of 4 copies' time (≤ 8 copies), cache-cold: their
  forward+backward touches x, y, dy and dx, about 100 MB for 32×64×56×56, several times the
  last-level cache, so memory is the floor, and a warm copy of two tensors that partly fit in
  that cache would not be one.
"""

from __future__ import annotations

from typing import Any

from . import IMPLEMENTATIONS

TARGET_CONV = 0.75
TARGET_FC = 1.0
TARGET_COPIES = 8.0


def _primary(row: dict[str, Any]) -> bool:
    return (
        row["mode"] == "forward+backward"
        and row["cache"] == "warm"
        and row["dtype"] == "float32"
        and not row["channels_last"]
    )


def _cold_twin(results: dict[str, Any], row: dict[str, Any]) -> dict[str, Any] | None:
    for other in results["rows"]:
        if other["cache"] == "cold" and all(
            other[k] == row[k] for k in ("case", "label", "mode", "dtype", "channels_last")
        ):
            return other
    return None


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target on each case it applies to: the measured ratio, the limit, met or not."""
    found = []
    for row in results["rows"]:
        if not _primary(row):
            continue
        s = row["seconds"]
        if "fused" not in s or "torch" not in s:
            continue
        limit = TARGET_FC if row["kind"] == "fc" else TARGET_CONV
        ratio = s["fused"] / s["torch"]
        found.append(
            {"target": f"fused ≤ {limit:g}× torch", "case": f"{row['case']} {row['label']}",
             "value": ratio, "limit": limit, "met": ratio <= limit}
        )  # fmt: skip
        cold = _cold_twin(results, row) if row["large"] else None
        if cold is not None and "copy" in cold["seconds"] and "fused" in cold["seconds"]:
            copies = cold["seconds"]["fused"] / cold["seconds"]["copy"]
            found.append(
                {"target": f"fused ≤ {TARGET_COPIES:g} copies, cold", "value": copies,
                 "case": f"{row['case']} {row['label']}", "limit": TARGET_COPIES,
                 "met": copies <= TARGET_COPIES}
            )  # fmt: skip
    return found


def _time(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.0f} µs" if us >= 100 else f"{us:.1f} µs"


def table(results: dict[str, Any], markdown: bool = False) -> str:
    """One line per case, mode and cache state: each implementation's median, its ratio to
    torch's (×t) and to the copy's (×c)."""
    head = ["case", "shape", "mode", "cache", *IMPLEMENTATIONS]
    lines = []
    for row in results["rows"]:
        s = row["seconds"]
        cells = [row["case"], row["label"], row["mode"], row["cache"]]
        for name in IMPLEMENTATIONS:
            if name not in s:
                cells.append("—")
                continue
            text = _time(s[name])
            if name != "copy" and "torch" in s and "copy" in s:
                text += f" ({s[name] / s['torch']:.2f}×t, {s[name] / s['copy']:.1f}×c)"
            cells.append(text)
        lines.append(cells)
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(cells) + " |" for cells in lines]
        return "\n".join(out)
    widths = [max(len(str(c[i])) for c in [head, *lines]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*cells) for cells in [head, *lines])


def summary(results: dict[str, Any]) -> str:
    """The targets, one line each, and the build: what a reader wants first."""
    out = []
    m = results["machine"]
    out.append(f"{m['cpu']}, {m['cores']} cores, {m['threads']} threads, torch {m['torch']}")
    if results.get("allocator"):
        out.append(f"allocator: {results['allocator']}")
    b = results["build"]
    if b.get("compile_seconds") is not None:
        out.append(f"fused kernels: first compile {b['compile_seconds']:.1f} s (cached after)")
    elif b.get("error"):
        out.append(f"fused kernels unavailable: {b['error']}")
    for t in targets(results):
        mark = "met" if t["met"] else "MISSED"
        out.append(f"{mark:>6}  {t['target']:<28} {t['case']}: {t['value']:.2f}")
    return "\n".join(out)
