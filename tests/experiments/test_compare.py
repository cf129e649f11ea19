"""bnlab.experiments.compare: loading run folders, the three figures, the page, the Markdown table.

Runs are tiny fake folders in tmp_path (a few epochs of made-up, well-formed metrics and a few
activation records), plus one real two-epoch training on random data.
"""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
from pathlib import Path

import pytest
import torch
from matplotlib.text import Text

from bnlab.errors import BNValueError
from bnlab.experiments import compare
from bnlab.explain.figures import render

LAYERS_BN = ("2", "6", "10")  # with BN the sigmoids sit at other module indices
LAYERS_PLAIN = ("1", "4", "7")


def fake_run(
    folder: Path,
    name: str | None,
    *,
    model: str = "lenet-bn",
    bn: str | None = "bnlab",
    lr: float = 1.0,
    epochs: int = 4,
    planned: int | None = None,
    precise: bool = True,
    layers: tuple[str, ...] = LAYERS_BN,
    spread: float = 1.0,
    shift: float = 0.0,
    note: str = "a fake run",
    **extra: object,
) -> Path:
    """A run folder as bnlab train writes it, with made-up but well-formed numbers."""
    folder.mkdir(parents=True)
    config = {
        "model": model,
        "bn": bn,
        "epochs": planned or epochs,
        "lr": lr,
        "batch_size": 256,
        "seed": 0,
        "init": "xavier",
        "limit": None,
        "record_every": 50,
        "precise_last": 1,
        "note": note,
        "train_size": 60000,
        "test_size": 10000,
        **extra,
    }
    if name is not None:
        config = {"name": name, **config}
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    rows = []
    for e in range(1, epochs + 1):
        rows.append(
            {
                "epoch": e,
                "step": 235 * e,
                "train_loss": 1.2 / e + shift,
                "train_acc": 0.6 + 0.05 * e - shift,
                "test_acc": 0.61 + 0.0437 * e - shift,
                "test_acc_precise": 0.8123 - shift if precise and e == epochs else None,
                "seconds": 4.0 + e if e > 1 else 30.0,
            }
        )
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    records = []
    for k, step in enumerate((1, 50, 100, 150, 200)):
        q = {
            name_: {
                "q15": [(-1.0 - 0.1 * k) * spread + j for j in range(3)],
                "q50": [(0.05 * k) * spread + j for j in range(3)],
                "q85": [(1.0 + 0.1 * k) * spread + j for j in range(3)],
            }
            for name_ in layers
        }
        records.append({"epoch": 1, "step": step, "layers": q})
    (folder / "activations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(Text))


def check_self_contained(html: str) -> None:
    assert "http://" not in html and "https://" not in html
    srcs = re.findall(r"src=['\"]([^'\"]*)", html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script" not in html and "<link" not in html


@pytest.fixture
def two_runs(tmp_path):
    a = fake_run(tmp_path / "runs" / "lenet-bn", "lenet-bn", note="LeNet-BN, fake")
    b = fake_run(
        tmp_path / "runs" / "lenet",
        "lenet",
        model="lenet",
        bn=None,
        lr=0.9,
        precise=False,
        layers=LAYERS_PLAIN,
        spread=3.0,
        shift=0.1,
        note="plain LeNet, fake",
    )
    return a, b


@pytest.fixture
def fig1_suite(tmp_path):
    suite = tmp_path / "bn-paper-fig1"
    for name, bn, layers in (("without-bn", None, LAYERS_PLAIN), ("with-bn", "bnlab", LAYERS_BN)):
        fake_run(
            suite / name,
            name,
            model="mlp-fig1",
            bn=bn,
            layers=layers,
            spread=1.0 if bn else 4.0,
            precise=bn is not None,
            batch_size=60,
            lr=0.5,
            init="gaussian",
            record_every=200,
        )
    return suite


RATES = (0.03, 4.3626, 10.0)  # as strings 10 sorts before 4.3626


@pytest.fixture
def sweep_suite(tmp_path):
    suite = tmp_path / "lr-sweep"
    for lr in RATES:
        for model, bn in (("lenet-bn", "bnlab"), ("lenet", None)):
            fake_run(
                suite / f"{model}-lr{lr:g}",
                f"{model}-lr{lr:g}",
                model=model,
                bn=bn,
                lr=lr,
                epochs=3,
                precise=False,
                shift=0.0 if bn else min(lr / 10, 0.5),
            )
    return suite


# --- loading -----------------------------------------------------------------------------------


def test_load_run_reads_every_file(two_runs):
    run = compare.load_run(two_runs[0])
    assert run.name == "lenet-bn" and run.path == two_runs[0]
    assert run.config["lr"] == 1.0 and len(run.metrics) == 4 and len(run.activations) == 5
    assert run.precise == pytest.approx(0.8123) and run.suite is None
    assert compare.load_run(two_runs[1]).precise is None


def test_load_run_name_falls_back_to_the_folder(tmp_path):
    run = compare.load_run(fake_run(tmp_path / "my-run", None))
    assert run.name == "my-run"


def _break(folder: Path, how: str) -> None:
    m = folder / "metrics.jsonl"
    lines = m.read_text().splitlines()
    if how == "no config":
        (folder / "config.json").unlink()
    elif how == "no metrics":
        m.unlink()
    elif how == "empty metrics":
        m.write_text("")
    elif how == "bad json":
        lines[1] = lines[1][:-5]
        m.write_text("\n".join(lines) + "\n")
    elif how == "missing key":
        row = json.loads(lines[1])
        del row["test_acc"]
        lines[1] = json.dumps(row)
        m.write_text("\n".join(lines) + "\n")
    elif how == "not a number":
        row = json.loads(lines[1])
        row["train_loss"] = "low"
        lines[1] = json.dumps(row)
        m.write_text("\n".join(lines) + "\n")
    elif how == "bad config":
        (folder / "config.json").write_text("{name: oops")
    elif how == "bad activations":
        a = folder / "activations.jsonl"
        first = json.loads(a.read_text().splitlines()[0])
        del first["layers"]["2"]["q85"]
        a.write_text(json.dumps(first) + "\n")


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("no config", "no config.json"),
        ("no metrics", "no metrics.jsonl"),
        ("empty metrics", "no epoch"),
        ("bad json", "metrics.jsonl line 2 is not valid JSON"),
        ("missing key", "metrics.jsonl line 2 lacks 'test_acc'"),
        ("not a number", "'train_loss' is 'low'"),
        ("bad config", "config.json is not valid JSON"),
        ("bad activations", "layer '2' needs q15, q50 and q85"),
    ],
)
def test_malformed_run_raises_naming_the_folder(tmp_path, how, says):
    folder = fake_run(tmp_path / "broken-run", "broken-run")
    _break(folder, how)
    with pytest.raises(BNValueError, match=re.escape(says)) as info:
        compare.load_run(folder)
    assert str(folder) in str(info.value)
    with pytest.raises(BNValueError, match=re.escape(str(folder))):
        compare.write([folder], tmp_path / "out")


def test_a_line_being_written_is_ignored(tmp_path):
    """A last line without its newline is the trainer writing it now, not an error."""
    folder = fake_run(tmp_path / "live", "live")
    with open(folder / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 5, "step": 11')
    with open(folder / "activations.jsonl", "a") as f:
        f.write('{"epoch": 2, "step": 250, "layers": {"2": {"q15": [0.1')
    run = compare.load_run(folder)
    assert len(run.metrics) == 4 and len(run.activations) == 5


# --- the page ----------------------------------------------------------------------------------


def test_write_page_is_self_contained_with_the_table(two_runs, tmp_path):
    out = tmp_path / "out"
    index = compare.write([str(p) for p in two_runs], out)
    assert index == out / "index.html" and index.is_file()
    html = index.read_text()
    check_self_contained(html)
    assert html.count("<img") == 2  # curves and bands, no sweep
    assert sorted(p.name for p in out.iterdir()) == ["bands.png", "curves.png", "index.html"]
    assert (out / "curves.png").read_bytes().startswith(b"\x89PNG")
    for folder in two_runs:
        run = compare.load_run(folder)
        last = run.metrics[-1]
        assert run.name in html and run.config["note"] in html
        assert f"{last['test_acc']:.4f}" in html
        assert f"{last['train_loss']:.4f}" in html and f"{last['train_acc']:.4f}" in html
        median = statistics.median(r["seconds"] for r in run.metrics)
        assert f"{median:.1f}" in html
        three = ", ".join(f"{r['test_acc']:.4f}" for r in run.metrics[-3:])
        assert three in html
    assert "0.8123" in html  # lenet-bn's precise-BN test accuracy


def test_write_is_deterministic(two_runs, tmp_path):
    compare.write(two_runs, tmp_path / "a")
    compare.write(two_runs, tmp_path / "b")
    for name in ("index.html", "curves.png", "bands.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_incomplete_run_shows_epochs_done_of_planned(tmp_path):
    folder = fake_run(tmp_path / "half", "half", epochs=3, planned=10)
    html = compare.write([folder], tmp_path / "out").read_text()
    assert "3 of 10" in html


# --- suites ------------------------------------------------------------------------------------


def test_suite_folder_expands_to_its_sub_runs(fig1_suite, tmp_path):
    (fig1_suite / "starting").mkdir()  # a sub-run that has not finished an epoch yet
    (fig1_suite / "starting" / "config.json").write_text('{"name": "starting"}')
    (fig1_suite / "notes").mkdir()  # not a run at all: ignored
    runs, skipped = compare.expand([fig1_suite])
    assert [r.name for r in runs] == ["with-bn", "without-bn"]
    assert all(r.suite == "bn-paper-fig1" for r in runs)
    assert len(skipped) == 1 and "starting" in skipped[0]
    html = compare.write([fig1_suite], tmp_path / "out").read_text()
    check_self_contained(html)
    assert "with-bn" in html and "without-bn" in html and "skipped" in html
    assert html.count("<img") == 2
    assert "this is Fashion-MNIST" in html


def test_sweep_runs_sort_by_rate(sweep_suite):
    runs, _ = compare.expand([sweep_suite])
    bn = [r.name for r in runs if r.name.startswith("lenet-bn")]
    assert bn == [f"lenet-bn-lr{lr:g}" for lr in RATES]  # 10 after 4.3626, not before it
    assert len(runs) == 2 * len(RATES)


def test_sweep_page_has_three_figures_and_stale_ones_go(sweep_suite, two_runs, tmp_path):
    html = compare.write([sweep_suite], tmp_path / "out").read_text()
    check_self_contained(html)
    assert html.count("<img") == 3
    assert (tmp_path / "out" / "sweep.png").is_file()
    compare.write([two_runs[0]], tmp_path / "out")  # the same folder, no sweep this time
    assert not (tmp_path / "out" / "sweep.png").exists()


def test_not_a_run_nor_a_suite_raises(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(BNValueError, match=re.escape(str(tmp_path / "empty"))):
        compare.write([tmp_path / "empty"], tmp_path / "out")
    with pytest.raises(BNValueError, match="no such folder"):
        compare.write([tmp_path / "missing"], tmp_path / "out")


# --- figures -----------------------------------------------------------------------------------


def test_curves_figure_has_three_panels_and_a_legend(two_runs):
    runs = [compare.load_run(p) for p in two_runs]
    fig = compare.curves_figure(runs)
    panels = [ax for ax in fig.axes if ax.axison]  # two rows of two: the fourth holds the legend
    assert len(panels) == 3 and len(fig.axes) == 4
    assert fig.axes[3].get_legend() is not None
    words = texts(fig)
    assert "lenet-bn" in words and "lenet" in words and "precise-BN" in words
    # one solid line per run in each panel, plus lenet-bn's precise-BN marker in the test panel
    assert [len(ax.lines) for ax in panels] == [2, 2, 3]
    precise = panels[2].lines[1]
    assert precise.get_linestyle() == "None" and list(precise.get_ydata()) == [0.8123]


def test_curves_that_coincide_are_named(tmp_path):
    a = compare.load_run(fake_run(tmp_path / "a", "bnlab-bn"))
    b = compare.load_run(fake_run(tmp_path / "b", "torch-bn"))
    fig = compare.curves_figure([a, b])
    assert "bnlab-bn and torch-bn lie on top of each other" in texts(fig)
    widths = [line.get_linewidth() for line in fig.axes[0].lines]
    assert widths[0] > widths[1]  # the first drawn wider, so both stay visible


def test_identical_runs_share_a_legend_entry_and_differ_in_dashes_and_markers(tmp_path):
    names = ("lenet-bn", "lenet-bn-torch", "lenet-bn-d2l")
    same = [compare.load_run(fake_run(tmp_path / n, n)) for n in names]
    other = compare.load_run(fake_run(tmp_path / "lenet", "lenet", model="lenet", shift=0.1))
    fig = compare.curves_figure([*same, other])
    legend = [t.get_text() for t in fig.axes[3].get_legend().get_texts()]
    assert "lenet-bn = lenet-bn-torch\n= lenet-bn-d2l (identical)" in legend
    assert "lenet" in legend and not any(t == "lenet-bn-torch" for t in legend)
    lines = fig.axes[0].lines[:3]  # the three coincident runs, in order
    dashes = {str(line.get_linestyle()) + str(line._dash_pattern) for line in lines}
    assert len(dashes) == 3
    assert len({line.get_marker() for line in lines}) == 3
    # markers on alternate epochs: no two runs put a marker on the same epoch
    every = [line.get_markevery() for line in lines]
    assert every == [(0, 3), (1, 3), (2, 3)]
    assert len({line.get_linewidth() for line in lines}) == 3  # wide to narrow


def test_bands_figure_defaults_to_each_runs_last_layer_and_shares_y(fig1_suite):
    runs, _ = compare.expand([fig1_suite])
    fig = compare.bands_figure(runs)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert len(axes) == 2
    titles = [ax.get_title() for ax in axes]
    assert "module 10 (nonlinearity 3 of 3), channel 0" in titles[0]  # with-bn
    assert "module 7 (nonlinearity 3 of 3), channel 0" in titles[1]  # without-bn
    assert axes[0].get_ylim() == axes[1].get_ylim()
    lo, hi = axes[0].get_ylim()
    assert lo < -1.4 * 4 and hi > 1.4 * 4  # the wider (without-BN) band fits in both
    words = texts(fig)
    assert "the paper used MNIST; this is Fashion-MNIST" in words
    median = axes[1].lines[2]  # q15, q85, then the median
    assert list(median.get_xdata()) == [1, 50, 100, 150, 200]
    assert list(median.get_ydata()) == pytest.approx([0.05 * k * 4 for k in range(5)])


def test_bands_figure_names_the_fig1_runs_among_others(fig1_suite, two_runs):
    runs, _ = compare.expand([*two_runs, fig1_suite])
    words = texts(compare.bands_figure(runs))
    assert (
        "bn-paper-fig1/with-bn and bn-paper-fig1/without-bn: the paper used MNIST; "
        "this is Fashion-MNIST"
    ) in words


def test_bands_figure_layer_and_channel_choice(fig1_suite):
    runs, _ = compare.expand([fig1_suite])
    fig = compare.bands_figure(runs, layer=0, channel=2)
    assert "module 2 (nonlinearity 1 of 3), channel 2" in fig.axes[0].get_title()
    only_bn = [r for r in runs if r.name == "with-bn"]
    assert "module 6" in compare.bands_figure(only_bn, layer="6").axes[0].get_title()
    with pytest.raises(BNValueError, match="no recorded layer '99'"):
        compare.bands_figure(runs, layer="99")
    with pytest.raises(BNValueError, match="no channel 5"):
        compare.bands_figure(runs, channel=5)
    no_acts = [dataclasses.replace(r, activations=[]) for r in runs]
    with pytest.raises(BNValueError, match="recorded activations"):
        compare.bands_figure(no_acts)


def test_sweep_figure_one_line_per_model(sweep_suite):
    runs, _ = compare.expand([sweep_suite])
    fig = compare.sweep_figure(runs)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    lines = [line for line in ax.lines if line.get_label().startswith(("LeNet", "LeNet-BN"))]
    labels = [line.get_label() for line in lines]
    assert labels == ["LeNet-BN, 3 epochs", "LeNet (no BN), 3 epochs"]
    for line in lines:
        assert list(line.get_xdata()) == list(RATES)
    by_name = {r.name: r.metrics[-1]["test_acc"] for r in runs}
    assert list(lines[1].get_ydata()) == [by_name[f"lenet-lr{lr:g}"] for lr in RATES]
    with pytest.raises(BNValueError, match="lr<rate>"):
        compare.sweep_figure([dataclasses.replace(runs[0], name="x")])


@pytest.mark.parametrize("which", ["curves", "bands", "sweep"])
def test_svg_is_deterministic(which, fig1_suite, sweep_suite):
    runs, _ = compare.expand([sweep_suite if which == "sweep" else fig1_suite])
    make = {
        "curves": compare.curves_figure,
        "bands": compare.bands_figure,
        "sweep": compare.sweep_figure,
    }[which]
    first = render(make(runs), "svg")
    assert first == render(make(runs), "svg")
    assert first.startswith(b"<?xml")


# --- the Markdown table ------------------------------------------------------------------------


def test_results_table_markdown(two_runs, fig1_suite, tmp_path):
    runs, _ = compare.expand([*two_runs, fig1_suite])
    md = compare.results_table_markdown(runs)
    lines = md.strip().splitlines()
    assert lines[0] == (
        "| recipe | epochs | final train loss | train acc | test acc (last 3 epochs) | "
        "precise-BN test acc | s/epoch (median) | command to reproduce |"
    )
    assert re.fullmatch(r"\|(---:?\|){8}", lines[1])
    assert len(lines) == 2 + len(runs)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines[2:]}
    assert set(rows) == {"lenet-bn", "lenet", "bn-paper-fig1/with-bn", "bn-paper-fig1/without-bn"}
    assert all(row.count(" | ") == 7 for row in rows.values())
    # the fake runs have 4 epochs where the recipes have 10 (50 for Figure 1)
    assert "`bnlab train lenet-bn --out docs/results/lenet-bn --epochs 4`" in rows["lenet-bn"]
    assert "`bnlab train lenet --out docs/results/lenet --epochs 4`" in rows["lenet"]  # lr 0.9
    for sub in ("bn-paper-fig1/with-bn", "bn-paper-fig1/without-bn"):
        cmd = "`bnlab train bn-paper-fig1 --out docs/results/bn-paper-fig1 --epochs 4`"
        assert cmd in rows[sub]
    run = compare.load_run(two_runs[0])
    assert f"| {run.metrics[-1]['train_loss']:.4f} |" in rows["lenet-bn"]
    assert "| 0.8123 |" in rows["lenet-bn"] and "| — |" in rows["lenet"]


def test_reproduce_command_names_overrides(tmp_path):
    run = compare.load_run(fake_run(tmp_path / "lenet-bn", "lenet-bn", epochs=2, lr=0.5))
    assert compare.reproduce_command(run) == (
        "bnlab train lenet-bn --out docs/results/lenet-bn --epochs 2 --lr 0.5"
    )
    assert compare.recipe_differences(run) == []
    odd = compare.load_run(fake_run(tmp_path / "odd", "lenet", model="lenet", init="gaussian"))
    assert compare.recipe_differences(odd) == ["bn", "init"]  # the plain recipe has bn=None
    assert "(this run's bn, init differ from the recipe)" in compare.results_table_markdown([odd])


# --- a real run --------------------------------------------------------------------------------


def test_real_tiny_training_compares(tmp_path):
    from bnlab.experiments.recipes import RECIPES
    from bnlab.experiments.train import train

    torch.manual_seed(0)
    data = (
        torch.rand(64, 1, 28, 28),
        torch.randint(0, 10, (64,)),
        torch.rand(32, 1, 28, 28),
        torch.randint(0, 10, (32,)),
    )
    recipe = dataclasses.replace(
        RECIPES["lenet-bn"], epochs=2, limit=2, batch_size=16, precise_last=1
    )
    run_dir = tmp_path / "lenet-bn"
    result = train(recipe, run_dir, data=data)
    index = compare.write([run_dir], tmp_path / "out")
    html = index.read_text()
    check_self_contained(html)
    assert html.count("<img") == 2
    last = result.metrics[-1]
    assert "lenet-bn" in html and f"{last['test_acc']:.4f}" in html
    assert f"{last['test_acc_precise']:.4f}" in html
    run = compare.load_run(run_dir)
    assert [r["epoch"] for r in run.metrics] == [1, 2]
    assert "module 14 (nonlinearity 4 of 4)" in compare.bands_figure([run]).axes[0].get_title()
    md = compare.results_table_markdown([run])
    assert (
        "`bnlab train lenet-bn --out docs/results/lenet-bn --epochs 2 --batch-size 16 --limit 2`"
        in md
    )
