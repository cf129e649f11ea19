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

Loading lives in :mod:`.runs` and the figures in :mod:`.plots`; both are importable from here.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

from ..render import CSS, esc, img, render
from .plots import _paper_note, bands_figure, curves_figure, sweep_figure, sweep_runs
from .runs import Run, _is_number, _recipe_for, expand, load_run

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

FILES = ("curves.png", "bands.png", "sweep.png")


# --- small helpers -----------------------------------------------------------------------------


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


def _sentence(s: str) -> str:
    return s[:1].upper() + s[1:] + "." if s else ""


# --- tables ------------------------------------------------------------------------------------


CLI_OPTIONS = ("epochs", "batch_size", "seed", "limit", "lr")  # bnlab train's overrides
RECIPE_ONLY = ("model", "bn", "init", "record_every", "precise_last")


def reproduce_command(run: Run) -> str:
    """``bnlab train …`` that writes this run again (a suite's sub-run: the suite's command).

    Options the run's config.json changed from its recipe are added (--epochs 2, …); ``lr`` only
    for a single recipe, since a suite's --lr would replace every sub-run's rate.
    """
    target, recipe, is_suite = _recipe_for(run)
    folder = (run.path.parent if is_suite else run.path).name  # where it was written
    args = [f"bnlab train {target} --out docs/results/{folder}"]
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
    return f"<figure>{img(png, alt)}<figcaption>{esc(caption)}</figcaption></figure>"


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
