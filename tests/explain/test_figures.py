"""bnlab.explain.figures: every figure renders, SVG is deterministic, drawn numbers are torch's."""

from __future__ import annotations

import warnings

import pytest
import torch

matplotlib = pytest.importorskip("matplotlib")

from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from bnlab.errors import BNValueError  # noqa: E402
from bnlab.explain import explain  # noqa: E402
from bnlab.explain import figures as F  # noqa: E402

GAMMA, BETA = [2.0, 5.0], [3.0, 8.0]


def seed_x() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(2, 2, 2, 2)


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return seed_x()


@pytest.fixture(scope="module")
def trace(x):
    return explain(x, GAMMA, BETA)


@pytest.fixture(scope="module")
def torch_bn(x):
    """torch's own BatchNorm2d on the seed batch: (μ, biased σ², y)."""
    bn = torch.nn.BatchNorm2d(2)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(GAMMA))
        bn.bias.copy_(torch.tensor(BETA))
        bn.train()
        y = bn(x)
    return x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False), y


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text)]


def _running_args():
    steps = list(range(1, 31))
    rm = [[0.5 * (1 - 0.9**s), -1.0 * (1 - 0.9**s)] for s in steps]
    rv = [[1.0, 1.0 + 3.0 * (1 - 0.9**s)] for s in steps]
    return steps, rm, rv, [0.5, -1.0], [1.0, 4.0]


def _train_eval_args():
    torch.manual_seed(3)
    x = torch.randn(4, 2, 2, 2)
    bn = torch.nn.BatchNorm2d(2)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([0.1, -0.1]))
        bn.running_var.copy_(torch.tensor([0.9, 1.2]))
        bn.train()
        y_train = bn(x)
        bn.eval()
        y_eval = bn(x)
    return x, y_train, y_eval


FACTORIES = {
    "tensor": lambda tr: F.tensor_figure(tr),
    "tensor_xhat": lambda tr: F.tensor_figure(tr, "xhat"),
    "stats": lambda tr: F.stats_figure(tr),
    "affine": lambda tr: F.affine_figure(tr),
    "walkthrough": lambda tr: F.walkthrough_figure(tr),
    "mean_dims": lambda tr: F.mean_dims_figure(torch.arange(12.0).reshape(4, 3)),
    "running": lambda tr: F.running_figure(*_running_args()),
    "train_eval": lambda tr: F.train_eval_figure(*_train_eval_args()),
    "axes": lambda tr: F.axes_figure(groups=2),
}


def all_figures(trace) -> dict[str, Figure]:
    return {name: make(trace) for name, make in FACTORIES.items()}


# --- every figure renders ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FACTORIES))
def test_renders_png_and_svg(trace, name):
    fig = FACTORIES[name](trace)
    assert isinstance(fig, Figure)
    png = F.render(fig, "png")
    assert png.startswith(b"\x89PNG") and len(png) > 2000
    svg = F.render(fig, "svg")
    assert b"<svg" in svg[:1000] and len(svg) > 2000


@pytest.mark.parametrize(
    "shape", [(4, 3), (3, 2, 5), (3, 2, 3, 3), (1, 1, 1, 2)], ids=lambda s: str(list(s))
)
def test_other_shapes(shape):
    torch.manual_seed(1)
    tr = explain(torch.randn(*shape))
    for fig in (
        F.tensor_figure(tr, "output"),
        F.stats_figure(tr),
        F.affine_figure(tr),
        F.walkthrough_figure(tr),
    ):
        assert F.render(fig, "png").startswith(b"\x89PNG")


def test_eval_trace(x):
    tr = explain(x, GAMMA, BETA, training=False, running_mean=[0.4, 0.45], running_var=[0.05, 0.07])
    fig = F.stats_figure(tr)
    t = texts(fig)
    assert "0.4000" in t and "0.0700" in t  # the running statistics are what is drawn
    assert any("running_mean" in s for s in t)
    for f in (fig, F.affine_figure(tr), F.walkthrough_figure(tr)):
        assert F.render(f, "png").startswith(b"\x89PNG")


def test_large_tensor_is_shaded_not_printed():
    tr = explain(torch.rand(4, 3, 8, 8))
    fig = F.tensor_figure(tr)
    assert not any(s == F.format_value(float(tr.input[0, 0, 0, 0])) for s in texts(fig))
    assert F.render(fig, "png").startswith(b"\x89PNG")


# --- deterministic SVG ---------------------------------------------------------------------------


def test_svg_is_deterministic(trace):
    fig = F.stats_figure(trace)
    assert F.render(fig, "svg") == F.render(fig, "svg")
    # and the same figure built again gives the same bytes
    assert F.render(F.stats_figure(trace), "svg") == F.render(F.stats_figure(trace), "svg")
    assert F.render(F.axes_figure(), "svg") == F.render(F.axes_figure(), "svg")


def test_svg_has_no_date_or_creator(trace):
    svg = F.render(F.tensor_figure(trace), "svg")
    assert b"<dc:date>" not in svg and b"Matplotlib v" not in svg


def test_render_rejects_other_formats(trace):
    with pytest.raises(BNValueError):
        F.render(F.tensor_figure(trace), "pdf")  # type: ignore[arg-type]


# --- the numbers drawn are torch's numbers ------------------------------------------------------


def test_tensor_figure_draws_the_input(trace, x):
    t = texts(F.tensor_figure(trace))
    for v in x.flatten().tolist():
        assert F.format_value(v) in t


def test_stats_figure_draws_torch_mean_and_var(trace, torch_bn):
    mean, var, _ = torch_bn
    t = texts(F.stats_figure(trace))
    for v in (*mean.tolist(), *var.tolist()):
        assert F.format_value(v) in t, v
    assert "0.4154" in t and "0.0464" in t  # the seed example, written out
    assert any("[1, 2, 1, 1]" in s for s in t)


def test_stats_figure_2d_shape():
    torch.manual_seed(1)
    x = torch.rand(4, 3)
    t = texts(F.stats_figure(explain(x)))
    for v in x.mean(dim=0).tolist():
        assert F.format_value(v) in t
    assert any("[1, 3]" in s for s in t)


def test_affine_figure_draws_torch_output(trace, torch_bn):
    _, _, y = torch_bn
    t = texts(F.affine_figure(trace))
    for v in y.flatten().tolist():
        assert F.format_value(v) in t, v
    joined = "\n".join(t)
    assert "γ=2, β=3" in joined and "γ=5, β=8" in joined


def test_walkthrough_draws_every_stage(trace, torch_bn):
    mean, var, y = torch_bn
    t = texts(F.walkthrough_figure(trace))
    for v in (
        *trace.input.flatten().tolist(),
        *mean.tolist(),
        *var.tolist(),
        *y.flatten().tolist(),
    ):
        assert F.format_value(v) in t


def test_mean_dims_results():
    t = texts(F.mean_dims_figure())
    for s in ("4.5", "5.5", "6.5", "1", "4", "7", "10"):
        assert s in t
    joined = "\n".join(t)
    assert "dim=0" in joined and "dim=1" in joined and "no dim" in joined


def test_axes_titles():
    t = texts(F.axes_figure(groups=3))
    for title in ("Batch Norm", "Layer Norm", "Instance Norm", "Group Norm", "N", "C", "H·W"):
        assert title in t


# --- colours, text and errors --------------------------------------------------------------------


def test_channel_colours_are_consistent(trace):
    for fig in (F.tensor_figure(trace), F.stats_figure(trace), F.affine_figure(trace)):
        for c in range(2):
            heads = [t for t in fig.findobj(Text) if t.get_text() == f"channel c={c}"]
            assert heads, c
            assert all(to_hex(t.get_color()) == F.PALETTE[c] for t in heads)


def test_no_missing_glyph_warnings(trace):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for fig in all_figures(trace).values():
            F.render(fig, "png")
    glyphs = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert not glyphs, glyphs[:3]


@pytest.mark.skipif(not F.cjk_font_available(), reason="no CJK font installed")
def test_chinese_glosses_present(trace):
    assert any("第一步" in s for s in texts(F.stats_figure(trace)))
    assert any("通道/深度" in s for s in texts(F.tensor_figure(trace)))
    assert any("按列求平均值" in s for s in texts(F.mean_dims_figure()))


def test_errors(trace):
    with pytest.raises(BNValueError):
        F.tensor_figure(trace, "mean")  # per-channel, not per-element
    with pytest.raises(BNValueError):
        F.tensor_figure(trace, "nope")
    with pytest.raises(BNValueError):
        F.axes_figure(groups=0)
    with pytest.raises(BNValueError):
        F.mean_dims_figure(torch.zeros(2, 2, 2))
    steps, rm, rv, pm, pv = _running_args()
    with pytest.raises(BNValueError):
        F.running_figure(steps[:-1], rm, rv, pm, pv)
    with pytest.raises(BNValueError):
        F.running_figure(steps, rm, rv, [0.0], pv)
    with pytest.raises(BNValueError):
        F.tensor_figure(explain(torch.rand(2, 2, 2, 2, 2)))


def test_without_cjk_font_no_chinese_is_drawn(trace, monkeypatch):
    monkeypatch.setattr(F.style, "cjk_font_available", lambda: False)  # where it is looked up
    for name, fig in all_figures(trace).items():
        cjk = [s for s in texts(fig) if any("\u2e80" <= ch <= "\u9fff" for ch in s)]
        assert not cjk, (name, cjk)


@pytest.mark.parametrize(("channels", "groups"), [(4, 2), (6, 3), (4, 1), (8, 8), (6, 2), (1, 1)])
def test_axes_group_caption_counts_the_drawn_channels(channels, groups):
    t = "\n".join(texts(F.axes_figure(groups, channels=channels)))
    per = channels // groups
    assert f"one group of {per} channel{'' if per == 1 else 's'}\n" in t
    assert f"(C = {channels} in G = {groups} group{'' if groups == 1 else 's'})" in t


def test_axes_figure_refuses_channels_groups_cannot_split():
    with pytest.raises(BNValueError, match="multiple of groups = 4"):
        F.axes_figure(4, channels=6)
