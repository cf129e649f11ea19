"""Training runs side by side: curves, the BN paper's Figure 1(b, c) bands, the lr sweep, a page.

A run is a folder written by :func:`bnlab.experiments.train.train` (``config.json``,
``metrics.jsonl``, ``activations.jsonl``); a suite (``bn-paper-fig1``, ``lr-sweep``) is a folder
of such runs.  ``write(run_dirs, out)`` loads them, draws

* ``curves.png``: train loss, train accuracy and test accuracy per epoch, one colour per run;
* ``bands.png``: the 15th/50th/85th percentiles of the input to one sigmoid over training, one
  column per run (the BN paper's Figure 1(b, c)), when the runs recorded activations;
* ``sweep.png``: final test accuracy against learning rate, when two or more runs are named
  like ``<model>-lr<rate>`` (the lr-sweep suite),

and one self-contained ``index.html`` (styles inline, figures as ``data:`` URIs) with a results
table.  The same inputs give the same bytes: nothing depends on the clock or the machine.

Runs that are still being written are fine: a last line without its newline (a write in
progress) is ignored, and a suite's sub-run without a finished epoch is skipped with a note.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..errors import BNValueError
from ..explain.figures import (
    INK,
    LABEL_SIZE,
    MUTED,
    PALETTE,
    TITLE_SIZE,
    _bi,
    _styled,
    render,
)
from ..explain.html import CSS, data_uri, esc

__all__ = [
    "Run",
    "bands_figure",
    "curves_figure",
    "expand",
    "load_run",
    "recipe_differences",
    "reproduce_command",
    "results_table_markdown",
    "sweep_figure",
    "write",
]

METRIC_KEYS = ("epoch", "step", "train_loss", "train_acc", "test_acc", "seconds")
ACTIVATION_KEYS = ("epoch", "step", "layers")
QUANTILE_KEYS = ("q15", "q50", "q85")
# Runs beyond the channel palette: tab10's last two, then tab20's light tints.
RUN_COLORS: tuple[str, ...] = (
    *PALETTE,
    "#7f7f7f",
    "#bcbd22",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
)
SWEEP_NAME = re.compile(r"^(?P<model>.+)-lr(?P<rate>\d+(?:\.\d*)?(?:e[-+]?\d+)?)$")
MODEL_LABELS = {"lenet-bn": "LeNet-BN", "lenet": "LeNet (no BN)", "mlp-fig1": "Fig. 1 MLP"}
LOSS_CAP = 3.0  # the loss axis stops here (chance level is ln 10 ≈ 2.30); a diverged run is cut
FILES = ("curves.png", "bands.png", "sweep.png")
HEADER_IN = 0.56  # inches above the panels for a figure's title; each subtitle line adds LINE_IN
LINE_IN = 0.22


# --- loading -----------------------------------------------------------------------------------


@dataclass
class Run:
    """One training run as read from its folder."""

    path: Path
    name: str  # config.json's name, else the folder's name
    config: dict[str, Any]
    metrics: list[dict[str, Any]]  # one row per finished epoch, in order
    activations: list[dict[str, Any]] = field(default_factory=list)
    suite: str | None = None  # the suite folder it was found in, if any

    @property
    def final(self) -> dict[str, Any]:
        return self.metrics[-1]

    @property
    def label(self) -> str:
        """The name, prefixed by its suite for a suite's sub-run: bn-paper-fig1/with-bn."""
        target, _, is_suite = _recipe_for(self)
        return f"{target}/{self.name}" if is_suite and target != self.name else self.name

    @property
    def precise(self) -> float | None:
        """The last precise-BN test accuracy recorded (None when the run has none)."""
        values = [r.get("test_acc_precise") for r in self.metrics]
        values = [v for v in values if _is_number(v)]
        return values[-1] if values else None


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _read_jsonl(folder: Path, path: Path, required: Sequence[str]) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")  # the last item is "" when the file ends with a newline
    rows: list[dict[str, Any]] = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines):  # no newline yet: the trainer is writing this line right now
                break
            raise BNValueError(
                f"{folder}: {path.name} line {i} is not valid JSON ({e.msg})"
            ) from None
        if not isinstance(row, dict):
            raise BNValueError(f"{folder}: {path.name} line {i} is not a JSON object")
        missing = [k for k in required if k not in row]
        if missing:
            raise BNValueError(
                f"{folder}: {path.name} line {i} lacks {', '.join(repr(k) for k in missing)}"
            )
        rows.append(row)
    return rows


def _check_metrics(folder: Path, rows: list[dict[str, Any]]) -> None:
    for i, row in enumerate(rows, 1):
        for k in METRIC_KEYS:
            if not _is_number(row[k]):
                raise BNValueError(
                    f"{folder}: metrics.jsonl row {i}: {k!r} is {row[k]!r}, not a number"
                )
        p = row.get("test_acc_precise")
        if p is not None and not _is_number(p):
            raise BNValueError(
                f"{folder}: metrics.jsonl row {i}: 'test_acc_precise' is {p!r}, not a number"
            )


def _check_activations(folder: Path, rows: list[dict[str, Any]]) -> None:
    for i, row in enumerate(rows, 1):
        layers = row["layers"]
        if not isinstance(layers, dict):
            raise BNValueError(f"{folder}: activations.jsonl row {i}: 'layers' is not an object")
        for name, q in layers.items():
            ok = isinstance(q, dict) and all(isinstance(q.get(k), list) for k in QUANTILE_KEYS)
            if not ok or not len(q["q15"]) == len(q["q50"]) == len(q["q85"]):
                raise BNValueError(
                    f"{folder}: activations.jsonl row {i}: layer {name!r} needs q15, q50 and "
                    "q85 lists of one length"
                )


def load_run(path: str | Path) -> Run:
    """Read one run folder; a missing or malformed file is a ``BNValueError`` naming the folder."""
    folder = Path(path)
    if not folder.is_dir():
        raise BNValueError(f"{folder}: no such run folder")
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise BNValueError(f"{folder}: no config.json (not a run folder written by bnlab train)")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise BNValueError(f"{folder}: config.json is not valid JSON ({e.msg})") from None
    if not isinstance(config, dict):
        raise BNValueError(f"{folder}: config.json is not a JSON object")
    metrics_path = folder / "metrics.jsonl"
    if not metrics_path.is_file():
        raise BNValueError(f"{folder}: no metrics.jsonl (has the run finished an epoch?)")
    metrics = _read_jsonl(folder, metrics_path, METRIC_KEYS)
    if not metrics:
        raise BNValueError(f"{folder}: metrics.jsonl holds no epoch yet")
    _check_metrics(folder, metrics)
    act_path = folder / "activations.jsonl"
    activations = _read_jsonl(folder, act_path, ACTIVATION_KEYS) if act_path.is_file() else []
    _check_activations(folder, activations)
    name = config.get("name")
    return Run(
        path=folder,
        name=name if isinstance(name, str) and name else folder.name,
        config=config,
        metrics=metrics,
        activations=activations,
    )


def _natural(s: str) -> tuple[Any, ...]:
    """Sort key with numbers as numbers: lr0.03 < lr1.9 < lr4.4 < lr10."""
    parts = re.split(r"(\d+(?:\.\d+)?)", s)
    return tuple(float(p) if i % 2 else p for i, p in enumerate(parts))


def _has_epoch(folder: Path) -> bool:
    p = folder / "metrics.jsonl"
    return p.is_file() and any(line.strip() for line in p.read_text(encoding="utf-8").split("\n"))


def expand(run_dirs: Sequence[str | Path]) -> tuple[list[Run], list[str]]:
    """Load run folders and suite folders (expanded to their sub-runs, in natural order).

    Returns the runs and notes on sub-runs skipped because they have no finished epoch yet.
    """
    runs: list[Run] = []
    skipped: list[str] = []
    for d in run_dirs:
        folder = Path(d)
        if not folder.is_dir():
            raise BNValueError(f"{folder}: no such folder")
        if (folder / "metrics.jsonl").exists() or (folder / "config.json").exists():
            runs.append(load_run(folder))
            continue
        subs = sorted(
            (
                c
                for c in folder.iterdir()
                if c.is_dir() and ((c / "metrics.jsonl").exists() or (c / "config.json").exists())
            ),
            key=lambda c: (_natural(c.name), c.name),
        )
        if not subs:
            raise BNValueError(
                f"{folder}: neither a run (no metrics.jsonl) nor a suite of runs "
                "(no sub-folder holds one)"
            )
        for sub in subs:
            if not _has_epoch(sub):
                skipped.append(f"{sub}: no finished epoch yet")
                continue
            runs.append(replace(load_run(sub), suite=folder.name))
    if not runs:
        raise BNValueError("compare: no run with a finished epoch to draw")
    return runs, skipped


# --- small helpers -----------------------------------------------------------------------------


def _color(i: int) -> str:
    return RUN_COLORS[i % len(RUN_COLORS)]


def _labels(runs: Sequence[Run]) -> list[str]:
    """Run names; a name that occurs twice gets its folder path to tell them apart."""
    names = [r.label for r in runs]
    return [
        n if names.count(n) == 1 else f"{n} ({r.path.parent.name}/{r.path.name})"
        for n, r in zip(names, runs, strict=True)
    ]


def _f(v: object, digits: int = 4) -> str:
    if v is None:
        return "—"
    if not _is_number(v):
        return str(v)
    return f"{v:.{digits}f}"


def _median_seconds(run: Run) -> float:
    return statistics.median(float(r["seconds"]) for r in run.metrics)


def _epochs_str(run: Run) -> str:
    planned = run.config.get("epochs")
    done = len(run.metrics)
    return f"{done} of {planned}" if _is_number(planned) and planned > done else str(done)


def _last3(run: Run) -> str:
    return ", ".join(_f(r["test_acc"]) for r in run.metrics[-3:])


def _dataset(run: Run) -> str:
    ds = run.config.get("dataset")
    return ds if isinstance(ds, str) and ds else "Fashion-MNIST"  # train.load_data's data set


def _paper_note(runs: Sequence[Run]) -> str:
    """The BN paper's Figure 1 used MNIST; say so when these runs are its network on another."""
    fig1 = [
        r
        for r in runs
        if (r.config.get("model") == "mlp-fig1" or r.suite == "bn-paper-fig1")
        and _dataset(r) != "MNIST"
    ]
    if not fig1:
        return ""
    sets = ", ".join(sorted({_dataset(r) for r in fig1}))
    note = f"the paper used MNIST; this is {sets}"
    return note if len(fig1) == len(runs) else f"{_and([r.label for r in fig1])}: {note}"


def _sentence(s: str) -> str:
    return s[:1].upper() + s[1:] + "." if s else ""


def _header(fig: Figure, height: float, title: str, subtitle: str = "") -> None:
    """A bold title and a muted subtitle in a strip above the constrained-layout panels."""
    top = 1 - 0.1 / height
    fig.text(0.5, top, title, ha="center", va="top", fontsize=TITLE_SIZE, weight="bold", color=INK)
    if subtitle:
        fig.text(
            0.5,
            top - (TITLE_SIZE * 1.55 / 72) / height,
            subtitle,
            ha="center",
            va="top",
            fontsize=LABEL_SIZE + 0.5,
            color=MUTED,
        )


def _header_in(subtitle: str) -> float:
    return HEADER_IN + LINE_IN * (subtitle.count("\n") + 1 if subtitle else 0)


def _constrained(fig: Figure, height: float, header: float) -> None:
    fig.set_layout_engine("constrained", rect=(0, 0, 1, 1 - header / height))


def _steps_fmt(v: float, _pos: object) -> str:
    return f"{v / 1000:g}k" if abs(v) >= 1000 else f"{v:g}"


COINCIDE_TOL = 1e-3  # curves closer than this at every epoch lie on top of each other


def _coincide(a: Run, b: Run, tol: float = COINCIDE_TOL) -> bool:
    """Per-epoch curves within ``tol`` of each other over the epochs both have finished."""
    common = min(len(a.metrics), len(b.metrics))
    return all(
        abs(float(ra[k]) - float(rb[k])) <= tol
        for ra, rb in zip(a.metrics[:common], b.metrics[:common], strict=True)
        for k in ("train_loss", "train_acc", "test_acc")
    )


def _coincident_groups(runs: Sequence[Run]) -> list[list[int]]:
    """Indices of runs whose curves lie on top of each other, groups of two or more."""
    groups: list[list[int]] = []
    for i, run in enumerate(runs):
        for g in groups:
            if _coincide(runs[g[0]], run):
                g.append(i)
                break
        else:
            groups.append([i])
    return [g for g in groups if len(g) > 1]


def _widths(n: int, groups: list[list[int]], base: float = 1.9) -> list[float]:
    """Line widths: coincident runs go from wide (drawn first) to narrow, so each shows."""
    lw = [base] * n
    for g in groups:
        for k, i in enumerate(g):
            lw[i] = base + 2.4 * (len(g) - 1 - k) / (len(g) - 1)
    return lw


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _ylim_acc(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    pad = max(0.015, 0.08 * (hi - lo))
    return max(0.0, lo - pad), min(1.0 + pad / 3, hi + pad)


# --- figures -----------------------------------------------------------------------------------


@_styled
def curves_figure(runs: Sequence[Run]) -> Figure:
    """Train loss, train accuracy and test accuracy per epoch; one colour per run."""
    runs = list(runs)
    if not runs:
        raise BNValueError("curves_figure: no runs")
    labels = _labels(runs)
    groups = _coincident_groups(runs)
    lws = _widths(len(runs), groups)
    any_precise = any(r.precise is not None for r in runs)
    notes = [
        "test accuracy in eval mode (running statistics)"
        + ("; ◇ = after recalibrating BN on the whole training set" if any_precise else "")
    ]
    notes += [
        f"{_and([labels[i] for i in g])} lie on top of each other (within {COINCIDE_TOL:g} "
        "at every epoch): drawn wide to narrow"
        for g in groups
    ]
    subtitle = "\n".join(notes)
    header = _header_in(subtitle)
    handles_n = len(runs) + any_precise
    height = 4.0 + header + 0.3 * math.ceil(handles_n / 5)
    fig = Figure(figsize=(13.5, height), facecolor="white")
    _constrained(fig, height, header)
    axs = fig.subplots(1, 3)
    panels = (
        ("train_loss", _bi("train loss", "训练损失"), "cross-entropy"),
        ("train_acc", _bi("train accuracy", "训练准确率"), "accuracy"),
        ("test_acc", _bi("test accuracy (eval mode)", "测试准确率"), "accuracy"),
    )
    clipped = False
    acc_values: list[float] = []
    for (key, title, ylabel), ax in zip(panels, axs, strict=True):
        values: list[float] = []
        for i, run in enumerate(runs):
            ep = [r["epoch"] for r in run.metrics]
            ys = [float(r[key]) for r in run.metrics]
            values += ys
            many = len(ep) <= 12
            ax.plot(
                ep,
                ys,
                color=_color(i),
                lw=lws[i],
                ls="-" if i < len(RUN_COLORS) else "--",
                marker="o" if many else None,
                ms=1.9 * lws[i],
            )
            if key == "test_acc":
                pts = [
                    (r["epoch"], r["test_acc_precise"])
                    for r in run.metrics
                    if _is_number(r.get("test_acc_precise"))
                ]
                if pts:
                    px, py = zip(*pts, strict=True)
                    values += py
                    ax.plot(
                        px,
                        py,
                        ls="none",
                        marker="D",
                        ms=7.5,
                        mfc="white",
                        mec=_color(i),
                        mew=2.0,
                        zorder=5,
                    )
        finite = [v for v in values if math.isfinite(v)]
        if key == "train_loss":
            top = max(finite, default=1.0) * 1.06
            if top > LOSS_CAP:
                top, clipped = LOSS_CAP, True
            ax.set_ylim(0, top)
        else:
            acc_values += values
        ax.set_title(title + (f" (cut at {LOSS_CAP:g})" if key == "train_loss" and clipped else ""))
        ax.set_xlabel(_bi("epoch", "轮次"))
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in axs[1:]:  # train and test accuracy on one scale: the gap between them shows
        ax.set_ylim(*_ylim_acc(acc_values))
    handles: list[Any] = [
        Line2D(
            [], [], color=_color(i), lw=lws[i], ls="-" if i < len(RUN_COLORS) else "--", label=lab
        )
        for i, lab in enumerate(labels)
    ]
    if any_precise:
        handles.append(
            Line2D(
                [],
                [],
                ls="none",
                marker="D",
                ms=7,
                mfc="white",
                mec=MUTED,
                mew=2.0,
                label=_bi("precise-BN test accuracy", "重新统计 BN 后"),
            )
        )
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=math.ceil(len(handles) / math.ceil(len(handles) / 5)),  # balanced rows
        fontsize=LABEL_SIZE,
        frameon=False,
    )
    _header(fig, height, _bi("Training curves", "训练曲线", "  "), subtitle)
    return fig


def _layer_choice(run: Run, layer: str | int | None) -> tuple[str, int, int]:
    """(module name, 1-based position, number of recorded layers) of the layer to draw."""
    order: list[str] = []
    for rec in run.activations:
        for name in rec["layers"]:
            if name not in order:
                order.append(name)
    if not order:
        raise BNValueError(f"{run.path}: activations.jsonl records no layer")
    if layer is None:
        pick = order[-1]
    elif isinstance(layer, int):
        if not -len(order) <= layer < len(order):
            raise BNValueError(
                f"{run.path}: layer index {layer} out of range ({len(order)} recorded layers)"
            )
        pick = order[layer]
    else:
        if layer not in order:
            raise BNValueError(
                f"{run.path}: no recorded layer {layer!r} (recorded: {', '.join(order)})"
            )
        pick = layer
    return pick, order.index(pick) + 1, len(order)


@_styled
def bands_figure(runs: Sequence[Run], layer: str | int | None = None, channel: int = 0) -> Figure:
    """The BN paper's Figure 1(b, c): percentiles of one sigmoid's input over training.

    One column per run (runs without activations are left out).  ``layer`` is a module name
    ("9"), a position among the recorded nonlinearities (-1: the last), or None: each run's last
    recorded one (with BN the module names shift, the depth does not).  q50 is the line, the
    band spans q15–q85, and all columns share one y range.
    """
    picked = [(i, r) for i, r in enumerate(runs) if r.activations]
    if not picked:
        raise BNValueError("bands_figure: none of the runs recorded activations")
    labels = _labels(runs)
    n = len(picked)
    ncols = 2 if n == 4 else (min(n, 3) if n <= 9 else 4)  # readable at the page's width
    nrows = math.ceil(len(picked) / ncols)
    which = (
        "the last recorded sigmoid"
        if layer is None
        else (f"module {layer}" if isinstance(layer, str) else f"nonlinearity {layer}")
    )
    sub = f"{which}, channel {channel}; x = training step; one y range for all columns"
    note = _paper_note([r for _, r in picked])
    subtitle = f"{sub}\n{note}" if note else sub
    header = _header_in(subtitle)
    height = 3.5 * nrows + header + 0.55
    fig = Figure(figsize=(4.4 * ncols + 0.6, height), facecolor="white")
    _constrained(fig, height, header)
    axs = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).reshape(-1)
    lo, hi = math.inf, -math.inf
    where: list[str] = []
    for ax, (i, run) in zip(axs, picked, strict=False):
        name, pos, count = _layer_choice(run, layer)
        recs = [rec for rec in run.activations if name in rec["layers"]]
        width = len(recs[0]["layers"][name]["q50"])
        if not 0 <= channel < width:
            raise BNValueError(
                f"{run.path}: layer {name!r} has {width} channels; no channel {channel}"
            )
        steps = np.array([rec["step"] for rec in recs], dtype=float)
        q15, q50, q85 = (
            np.array([rec["layers"][name][k][channel] for rec in recs], dtype=float)
            for k in QUANTILE_KEYS
        )
        color = _color(i)
        ax.fill_between(steps, q15, q85, color=color, alpha=0.22, lw=0)
        for q in (q15, q85):
            ax.plot(steps, q, color=color, lw=0.8, alpha=0.8)
        ax.plot(steps, q50, color=color, lw=2.0)
        ax.axhline(0.0, color=MUTED, lw=0.8, ls=":", zorder=0)
        finite = np.concatenate([q15, q85])
        finite = finite[np.isfinite(finite)]
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
        ax.set_title(
            f"{labels[i]}\nmodule {name} (nonlinearity {pos} of {count}), channel {channel}",
            fontsize=LABEL_SIZE + 0.5,
        )
        ax.set_xlabel(_bi("training step", "训练步数"))
        ax.xaxis.set_major_formatter(FuncFormatter(_steps_fmt))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.grid(alpha=0.3)
        ax.margins(x=0.01)
        where.append(name)
    for ax in axs[len(picked) :]:
        ax.set_axis_off()
    if math.isfinite(lo):
        pad = max(0.05, 0.06 * (hi - lo))
        axs[0].set_ylim(lo - pad, hi + pad)
    for r in range(nrows):
        axs[r * ncols].set_ylabel(_bi("sigmoid input", "sigmoid 的输入"))
    handles = [
        Line2D([], [], color=MUTED, lw=2.0, label=_bi("median (50th percentile)", "中位数")),
        Patch(facecolor=MUTED, alpha=0.3, label=_bi("15th–85th percentile", "第 15–85 百分位")),
    ]
    fig.legend(
        handles=handles, loc="outside lower center", ncols=2, fontsize=LABEL_SIZE, frameon=False
    )
    _header(
        fig,
        height,
        _bi(
            "Input to one sigmoid over training (BN paper, Fig. 1b–c)", "训练中 sigmoid 输入的分布"
        ),
        subtitle,
    )
    return fig


def _sweep_points(runs: Sequence[Run]) -> dict[tuple[str, int], list[tuple[float, float]]]:
    groups: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for run in runs:
        m = SWEEP_NAME.match(run.name)
        if not m:
            continue
        lr = run.config.get("lr")
        rate = float(lr) if _is_number(lr) and lr > 0 else float(m["rate"])
        groups.setdefault((m["model"], len(run.metrics)), []).append(
            (rate, float(run.final["test_acc"]))
        )
    return groups


def sweep_runs(runs: Sequence[Run]) -> list[Run]:
    """The runs named like ``<model>-lr<rate>`` (the lr-sweep suite's)."""
    return [r for r in runs if SWEEP_NAME.match(r.name)]


@_styled
def sweep_figure(runs: Sequence[Run]) -> Figure:
    """Final test accuracy against learning rate (log x), one line per model (and epoch count)."""
    groups = _sweep_points(runs)
    if not groups:
        raise BNValueError("sweep_figure: no run is named like <model>-lr<rate>")
    subtitle = "test accuracy (eval mode) after the last epoch, one point per run"
    header = _header_in(subtitle)
    height = 4.6 + header
    fig = Figure(figsize=(8.0, height), facecolor="white")
    _constrained(fig, height, header)
    ax = fig.subplots()
    rates: set[float] = set()
    # LeNet-BN first, then plain LeNet, then anything else, each by epoch count
    order = sorted(groups, key=lambda k: (k[0] != "lenet-bn", k[0] != "lenet", k))
    for i, key in enumerate(order):
        model, epochs = key
        pts = sorted(groups[key])
        xs, ys = zip(*pts, strict=True)
        rates.update(xs)
        ax.plot(
            xs,
            ys,
            color=_color(i),
            lw=2.0,
            marker="o",
            ms=6,
            label=f"{MODEL_LABELS.get(model, model)}, {epochs} epoch{'s' if epochs != 1 else ''}",
        )
    ax.axhline(0.1, color=MUTED, lw=1.0, ls="--", label=_bi("chance (10 classes)", "随机猜测"))
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.set_xlim(min(rates) / 1.4, max(rates) * 1.4)
    ax.set_ylim(0, 1)
    ax.set_xlabel(_bi("learning rate (log scale)", "学习率"))
    ax.set_ylabel(_bi("final test accuracy", "最终测试准确率"))
    ax.grid(alpha=0.3, which="both")
    fig.legend(
        loc="outside lower center", ncols=3, fontsize=LABEL_SIZE, frameon=False
    )  # below the axes: the low-accuracy corner is where diverged runs land
    _header(
        fig,
        height,
        _bi("Learning-rate sweep", "学习率扫描", "  "),
        subtitle,
    )
    return fig


# --- tables ------------------------------------------------------------------------------------


CLI_OPTIONS = ("epochs", "batch_size", "seed", "limit", "lr")  # bnlab train's overrides
RECIPE_ONLY = ("model", "bn", "init", "record_every", "precise_last")


def _recipe_for(run: Run) -> tuple[str, Any, bool]:
    """(what to pass to bnlab train, the recipe that wrote the run or None, is it a suite)."""
    from .recipes import RECIPES, suites

    if run.suite is None and run.name in RECIPES:
        return run.name, RECIPES[run.name], False
    for s in suites().values():
        match = [r for r in s.runs if r.name == run.name]
        if match and run.suite in (None, s.name):
            return s.name, match[0], True
    return run.suite or run.name, None, run.suite is not None


def reproduce_command(run: Run) -> str:
    """``bnlab train …`` that writes this run again (a suite's sub-run: the suite's command).

    Options the run's config.json changed from its recipe are added (--epochs 2, …); ``lr`` only
    for a single recipe, since a suite's --lr would replace every sub-run's rate.
    """
    target, recipe, is_suite = _recipe_for(run)
    args = [f"bnlab train {target} --out docs/results/{target}"]
    if recipe is not None:
        for k in CLI_OPTIONS[:-1] if is_suite else CLI_OPTIONS:
            v = run.config.get(k)
            if k in run.config and v is not None and v != getattr(recipe, k):
                flag = "--" + k.replace("_", "-")
                args.append(f"{flag} {v:g}" if k == "lr" else f"{flag} {v}")
    return " ".join(args)


def recipe_differences(run: Run) -> list[str]:
    """config.json fields that differ from the recipe and that bnlab train cannot override."""
    _, recipe, is_suite = _recipe_for(run)
    if recipe is None:
        return []
    keys = (*RECIPE_ONLY, "lr") if is_suite else RECIPE_ONLY
    return [k for k in keys if k in run.config and run.config[k] != getattr(recipe, k)]


def _command_note(run: Run) -> str:
    diff = recipe_differences(run)
    return f" (this run's {', '.join(diff)} differ from the recipe)" if diff else ""


def _row(run: Run) -> list[str]:
    return [
        run.label,
        _epochs_str(run),
        _f(run.final["train_loss"]),
        _f(run.final["train_acc"]),
        _last3(run),
        _f(run.precise),
        _f(_median_seconds(run), 1),
    ]


TABLE_HEADER = (
    "recipe",
    "epochs",
    "final train loss",
    "train acc",
    "test acc (last 3 epochs)",
    "precise-BN test acc",
    "s/epoch (median)",
)


def results_table_markdown(runs: Sequence[Run]) -> str:
    """A Markdown results table, one row per run, for docs/results/README.md."""
    head = [*TABLE_HEADER, "command to reproduce"]

    def cell(s: str) -> str:
        return s.replace("|", "\\|")

    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * 6 + ["---"]) + "|",
    ]
    for run in runs:
        command = f"`{reproduce_command(run)}`{cell(_command_note(run))}"
        cells = [cell(c) for c in _row(run)] + [command]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --- page --------------------------------------------------------------------------------------

PAGE_CSS = """
body { max-width: 1280px; }
table.bn td.note { text-align: left; color: #33404d; }
details { margin: 0.4em 0; }
summary { cursor: pointer; font-weight: bold; }
.skipped { color: #8a5a00; }
""".strip()


def _html_table(runs: Sequence[Run]) -> str:
    head = "".join(
        f"<th class='l'>{esc(h)}</th>" if i == 0 else f"<th>{esc(h)}</th>"
        for i, h in enumerate(TABLE_HEADER)
    )
    rows = []
    for run in runs:
        cells = _row(run)
        tds = f"<td class='l'>{esc(cells[0])}</td>" + "".join(
            f"<td>{esc(c)}</td>" for c in cells[1:]
        )
        rows.append(f"<tr>{tds}<td class='note'>{esc(run.config.get('note', ''))}</td></tr>")
    return (
        f"<table class='bn'><tr>{head}<th class='l'>note</th></tr>\n" + "\n".join(rows) + "</table>"
    )


def _run_details(run: Run) -> str:
    cfg = "".join(
        f"<tr><td class='l'>{esc(k)}</td><td class='l'>{esc(json.dumps(v))}</td></tr>"
        for k, v in run.config.items()
    )
    epochs = "".join(
        f"<tr><td>{esc(r['epoch'])}</td><td>{esc(r['step'])}</td><td>{_f(r['train_loss'])}</td>"
        f"<td>{_f(r['train_acc'])}</td><td>{_f(r['test_acc'])}</td>"
        f"<td>{_f(r.get('test_acc_precise'))}</td><td>{_f(r['seconds'], 1)}</td></tr>"
        for r in run.metrics
    )
    return (
        f"<details><summary>{esc(run.label)}</summary>\n"
        f"<p>folder <code>{esc(run.path)}</code>; reproduce with "
        f"<code>{esc(reproduce_command(run))}</code>{esc(_command_note(run))}</p>\n"
        "<table class='bn'><tr><th>epoch</th><th>step</th><th>train loss</th><th>train acc</th>"
        "<th>test acc</th><th>precise-BN test acc</th><th>s</th></tr>"
        f"{epochs}</table>\n"
        f"<table class='bn'><tr><th class='l'>config</th><th class='l'>value</th></tr>{cfg}"
        "</table>\n</details>"
    )


def _figure_html(png: bytes, alt: str, caption: str) -> str:
    return (
        f"<figure><img alt='{esc(alt)}' src='{data_uri(png)}'>"
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def page(runs: Sequence[Run], images: dict[str, bytes], skipped: Sequence[str] = ()) -> str:
    """The self-contained HTML page for ``runs`` and the rendered ``images`` (by file name)."""
    parts = [
        "<h1>Training runs compared</h1>",
        f"<p>{len(runs)} run{'s' if len(runs) != 1 else ''}: "
        + ", ".join(f"<code>{esc(r.path)}</code>" for r in runs)
        + "</p>",
    ]
    parts += [f"<p class='skipped'>skipped {esc(s)}</p>" for s in skipped]
    parts += ["<h2>Results</h2>", _html_table(runs)]
    parts.append(
        "<p class='note'>test accuracy is measured in eval mode (running statistics) after each "
        "epoch; precise-BN recomputes BN's statistics on the whole training set first. "
        "s/epoch is the median wall time of an epoch (training, test and precise-BN passes).</p>"
    )
    captions = {
        "curves.png": (
            "Training curves",
            "Train loss and accuracy (averaged over the epoch's batches, in training mode) and "
            "test accuracy after each epoch (eval mode); hollow diamonds: precise-BN.",
        ),
        "bands.png": (
            "The input to one sigmoid over training",
            "As in the BN paper's Figure 1(b, c): the median (line) and the 15th–85th "
            "percentiles (band) of one channel's input to the last recorded sigmoid, per "
            "training step. The paper's point: with BN the distribution stays put; without it, "
            "it drifts, and the layers after it must keep adapting. "
            + (_sentence(_paper_note(runs))),
        ),
        "sweep.png": (
            "Learning-rate sweep",
            "Test accuracy after the last epoch against the learning rate (log scale).",
        ),
    }
    for key in FILES:
        if key in images:
            title, caption = captions[key]
            parts.append(f"<h2>{esc(title)}</h2>")
            parts.append(_figure_html(images[key], title, caption.strip()))
    parts.append("<h2>Runs</h2>")
    parts += [_run_details(r) for r in runs]
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>bnlab compare</title>\n<style>\n{CSS}\n{PAGE_CSS}\n</style>\n</head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body>\n</html>\n"
    )


def write(run_dirs: Sequence[str | Path], out: str | Path) -> Path:
    """Load runs and suites, write ``out``/curves.png (and bands.png, sweep.png) and index.html.

    Returns the path of index.html.  Figures that do not apply this time are removed from
    ``out`` so that the folder always matches the page.
    """
    runs, skipped = expand(run_dirs)
    images = {"curves.png": render(curves_figure(runs), "png")}
    if any(r.activations for r in runs):
        images["bands.png"] = render(bands_figure(runs), "png")
    if len(sweep_runs(runs)) >= 2:
        images["sweep.png"] = render(sweep_figure(runs), "png")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if name in images:
            (folder / name).write_bytes(images[name])
        else:
            (folder / name).unlink(missing_ok=True)
    index = folder / "index.html"
    index.write_text(page(runs, images, skipped), encoding="utf-8")
    return index
