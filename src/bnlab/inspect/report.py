"""The health check's :class:`Report`: findings and per-layer numbers, as text, JSON, rich and HTML.

``str(report)`` is plain text for a log; ``report.to_json()`` the same as data;
``rich.print(report)`` a table in the terminal; ``report.to_html()`` one self-contained page
with per-layer plots (running against population mean and variance, channel by channel; the
train/eval gap by layer), drawn with the shared rendering layer (:mod:`bnlab.render`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..render import CSS, VIEWPORT, esc, img, render
from ..render.style import INK, MUTED, PALETTE, _styled

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One problem in one layer: what was found, what to do, and the numbers behind it."""

    layer: str
    kind: str  # stale, gap, dead, small-batch, frozen-but-training, bias-before-bn, momentum, eps
    severity: str  # error, warning or info
    message: str
    advice: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"[{self.severity}] '{self.layer}': {self.message}. {self.advice}"


@dataclass
class LayerRow:
    """What was measured for one BN layer (per-channel lists in channel order)."""

    name: str
    kind: str
    channels: int
    momentum: float | None = None
    eps: float = 1e-5
    frozen: bool = False
    modes: dict[str, int] = field(default_factory=dict)
    values_per_channel: int = 0
    updated: bool = False
    running_mean: list[float] | None = None
    running_var: list[float] | None = None
    population_mean: list[float] | None = None
    population_var: list[float] | None = None
    stale_shift: float | None = None
    stale_ratio: float | None = None
    gap: float | None = None
    note: str = ""


@dataclass
class Report:
    """The findings of :func:`bnlab.inspect.check` on one model, most severe first."""

    model: str
    layers: list[LayerRow]
    findings: list[Finding]
    batches: int
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. accuracies, from the CLI

    @property
    def healthy(self) -> bool:
        """No error and no warning (info findings are advice, not faults)."""
        return not any(f.severity in ("error", "warning") for f in self.findings)

    def of(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def __str__(self) -> str:
        head = (
            f"bnlab check: {self.model}, {len(self.layers)} BN layer"
            f"{'s' if len(self.layers) != 1 else ''}, {self.batches} batches"
        )
        lines = [head]
        for key, value in self.extra.items():
            lines.append(f"  {key}: {value}")
        if not self.findings:
            lines.append("no problems found")
        lines += [f"  {f.line()}" for f in self.findings]
        lines.append("layers:")
        for r in self.layers:
            bits = [f"{r.kind}({r.channels})"]
            if r.stale_shift is not None:
                bits.append(f"shift {r.stale_shift:.2f}σ, var ×{r.stale_ratio:.2f}")
            if r.gap is not None:
                bits.append(f"gap {r.gap:.3f}")
            bits.append(f"{r.values_per_channel} values/channel")
            bits.append("modes " + ", ".join(f"{k} {v}" for k, v in sorted(r.modes.items())))
            if r.frozen:
                bits.append("frozen")
            if r.note:
                bits.append(r.note)
            lines.append(f"  '{r.name}': " + "; ".join(bits))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "batches": self.batches,
            "healthy": self.healthy,
            "extra": self.extra,
            "findings": [asdict(f) for f in self.findings],
            "layers": [asdict(r) for r in self.layers],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.table import Table

        table = Table(title=f"BN check: {self.model} ({self.batches} batches)")
        for col in ("severity", "layer", "finding", "what to do"):
            table.add_column(col, overflow="fold")
        colour = {"error": "bold red", "warning": "yellow", "info": "cyan"}
        for f in self.findings:
            table.add_row(f"[{colour[f.severity]}]{f.severity}[/]", f.layer, f.message, f.advice)
        if not self.findings:
            table.add_row("[green]ok[/]", "—", "no problems found", "")
        layers = Table(title="layers")
        for col in ("layer", "kind", "C", "mean shift σ", "var ×", "gap", "values/ch", "modes"):
            layers.add_column(col)
        for r in self.layers:
            layers.add_row(
                r.name, r.kind, str(r.channels),
                "—" if r.stale_shift is None else f"{r.stale_shift:.2f}",
                "—" if r.stale_ratio is None else f"{r.stale_ratio:.2f}",
                "—" if r.gap is None else f"{r.gap:.3f}",
                str(r.values_per_channel),
                ", ".join(f"{k} {v}" for k, v in sorted(r.modes.items())),
            )  # fmt: skip
        return Group(table, layers)

    def figures(self) -> dict[str, Figure]:
        """The report's plots: the gap by layer, and running vs population statistics."""
        out = {"gap": gap_figure(self.layers)}
        for i, r in enumerate(self.layers):
            if r.running_mean is not None and r.population_mean is not None:
                out[f"layer{i}"] = stats_figure(r)
        return out

    def to_html(self) -> str:
        """One self-contained page: findings, the layer table, the plots."""
        colour = {"error": "#cf222e", "warning": "#9a6700", "info": "#0969da"}
        rows = "".join(
            f"<p class='finding'><b style='color:{colour[f.severity]}'>{esc(f.severity)}</b> · "
            f"layer <code>{esc(f.layer)}</code>: {esc(f.message)}.<br>"
            f"<span class='note'>What to do: {esc(f.advice)}</span></p>"
            for f in self.findings
        ) or "<p class='finding'>No problems found.</p>"
        layer_rows = "".join(
            f"<tr><td class='l'><code>{esc(r.name)}</code></td><td class='l'>{esc(r.kind)}</td>"
            f"<td>{r.channels}</td><td>{_num(r.stale_shift)}</td><td>{_num(r.stale_ratio)}</td>"
            f"<td>{_num(r.gap, 3)}</td><td>{r.values_per_channel}</td>"
            f"<td class='l'>{esc(', '.join(f'{k} {v}' for k, v in sorted(r.modes.items())))}"
            f"{' (frozen)' if r.frozen else ''}</td></tr>"
            for r in self.layers
        )
        extra = "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in self.extra.items())
        figs = self.figures()
        plots = "\n".join(
            f"<figure>{img(render(fig), alt)}</figure>"
            for alt, fig in [
                ("train/eval output gap by layer", figs.pop("gap")),
                *((f"running vs population statistics, {k}", v) for k, v in figs.items()),
            ]
        )
        title = f"BN check: {self.model}"
        return (
            f"<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n{VIEWPORT}"
            f"<title>{esc(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n"
            f"<h1>{esc(title)}</h1>\n<p>{len(self.layers)} BN layers, {self.batches} batches: "
            f"{'healthy' if self.healthy else 'problems found'}.</p>\n"
            f"{f'<ul>{extra}</ul>' if extra else ''}"
            f"<h2>Findings</h2>\n{rows}\n"
            "<h2>Layers</h2>\n<table class='bn'><tr><th class='l'>layer</th>"
            "<th class='l'>kind</th><th>C</th>"
            "<th>mean shift (σ)</th><th>var ratio</th><th>train/eval gap</th>"
            f"<th>values per channel</th><th>modes</th></tr>{layer_rows}</table>\n"
            f"<h2>Plots</h2>\n{plots}\n</body>\n</html>\n"
        )


def _num(v: float | None, digits: int = 2) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


@_styled
def gap_figure(layers: list[LayerRow]) -> Figure:
    """The train/eval output gap of each layer, as bars in forward order."""
    names = [r.name for r in layers]
    gaps = [r.gap or 0.0 for r in layers]
    fig = Figure(figsize=(max(4.0, 0.6 * len(names) + 2), 3.0))
    ax = fig.add_subplot()
    ax.bar(range(len(names)), gaps, color=PALETTE[0])
    ax.set_xticks(range(len(names)), [f"'{n}'" for n in names], rotation=30, ha="right")
    ax.set_ylabel("RMS(y_train − y_eval) / RMS(y_eval)", color=MUTED)
    ax.set_title("train/eval output gap by layer", color=INK)
    fig.tight_layout()
    return fig


@_styled
def stats_figure(row: LayerRow) -> Figure:
    """One layer's running against population mean and variance, channel by channel."""
    fig = Figure(figsize=(8.0, 2.8))
    for k, (what, running, population) in enumerate(
        (
            ("mean", row.running_mean, row.population_mean),
            ("variance", row.running_var, row.population_var),
        )
    ):
        ax = fig.add_subplot(1, 2, k + 1)
        chans = range(len(running or []))
        ax.plot(chans, population, "o", color=PALETTE[1], label="population (this data)", ms=4)
        ax.plot(chans, running, "x", color=PALETTE[4], label="running (the buffers)", ms=5)
        ax.set_xlabel("channel", color=MUTED)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"layer '{row.name}': {what}", color=INK)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, frameon=False, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    return fig
