"""bnlab.explain.figures: every figure renders, SVG is deterministic, drawn numbers are torch's."""

from __future__ import annotations

import warnings

import pytest
import torch

matplotlib = pytest.importorskip("matplotlib")

from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.mathtext import MathTextParser  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from bnlab.errors import BNValueError  # noqa: E402
from bnlab.explain import explain  # noqa: E402
from bnlab.explain import figures as F  # noqa: E402
from bnlab.render import style  # noqa: E402

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
    "xhat": lambda tr: F.xhat_figure(tr),
    "broadcast": lambda tr: F.broadcast_figure(tr),
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
        F.xhat_figure(tr),
        F.broadcast_figure(tr),
    ):
        assert F.render(fig, "png").startswith(b"\x89PNG")


def test_eval_trace(x):
    tr = explain(x, GAMMA, BETA, training=False, running_mean=[0.4, 0.45], running_var=[0.05, 0.07])
    fig = F.stats_figure(tr)
    t = texts(fig)
    assert "0.4000" in t and "0.0700" in t  # the running statistics are what is drawn
    assert any("running_mean" in s for s in t)
    for f in (fig, F.affine_figure(tr), F.walkthrough_figure(tr), F.xhat_figure(tr)):
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
    for fig in (
        F.tensor_figure(trace),
        F.stats_figure(trace),
        F.affine_figure(trace),
        F.xhat_figure(trace),
        F.broadcast_figure(trace),
        F.walkthrough_figure(trace),
    ):
        for c in range(2):
            heads = [t for t in fig.findobj(Text) if t.get_text() == f"channel c={c}"]
            assert heads, c
            assert all(to_hex(t.get_color()) == style.channel_text_color(c) for t in heads)


OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


@pytest.mark.parametrize("c", range(10))
def test_channels_use_the_okabe_ito_list(c):
    assert F.channel_color(c) == OKABE_ITO[c % 8]


@pytest.mark.parametrize("c", range(8))
def test_channel_text_keeps_contrast(c):
    """Channel-coloured text on white, and ink on every tint a cell gets, read at 4.5:1."""
    text = style.channel_text_color(c)
    assert style.contrast(text, "white") >= 4.5
    r, g, b = (int(text[i : i + 2], 16) for i in (1, 3, 5))  # the same hue, only darker
    ref = [int(OKABE_ITO[c][i : i + 2], 16) for i in (1, 3, 5)]
    assert max(ref) == 0 or all(
        abs(v / max(ref) * max(r, g, b) - w) <= 2 for v, w in zip(ref, (r, g, b), strict=True)
    )
    for amount in (0.12, 0.2, 0.35, 0.4, 0.82):
        face = style._tint(F.channel_color(c), amount)
        assert style.contrast(style.ink_on(face), face) >= 4.5, amount
    assert style.contrast(style.channel_edge_color(c), "white") >= 1.8  # yellow outlines show


def test_eight_channels_every_cell_text_has_contrast():
    torch.manual_seed(2)
    for step in ("input", "xhat"):
        fig = F.tensor_figure(explain(torch.rand(2, 8, 1, 1)), step)
        cells = {
            (round(p.get_x() + p.get_width() / 2, 3), round(p.get_y() + p.get_height() / 2, 3)): p
            for p in fig.axes[0].patches
            if isinstance(p, Rectangle) and p.get_width() == 1 and p.get_facecolor()[3] > 0
        }
        checked = 0
        for t in fig.findobj(Text):
            p = cells.get((round(t.get_position()[0], 3), round(t.get_position()[1], 3)))
            if p is not None and t.get_text():
                assert style.contrast(t.get_color(), p.get_facecolor()) >= 4.5, t.get_text()
                checked += 1
        assert checked == 16


# --- diverging colour maps for x − μ and x̂ ---------------------------------------------------


def test_diverging_limits_are_symmetric_and_round():
    assert style.diverging_limit([-1.52, 1.85]) == 2
    assert style.diverging_limit([0.45, -0.3]) == 0.5
    assert style.diverging_limit([0.0]) == 1.0
    assert style.diverging_limit([-3.0]) == 5
    white = style.diverging_color(0.0, 2.0)
    assert all(v > 0.9 for v in white)  # 0 is (near) white
    lo, hi = style.diverging_color(-2.0, 2.0), style.diverging_color(2.0, 2.0)
    assert lo[2] > lo[0] and hi[0] > hi[2]  # below the mean blue, above it red


@pytest.mark.parametrize("step", ["x_minus_mean", "xhat"])
@pytest.mark.parametrize("shape", [(2, 2, 2, 2), (4, 3, 8, 8)], ids=["printed", "shaded"])
def test_centred_steps_are_shaded_on_a_diverging_scale_with_a_colour_bar(step, shape):
    torch.manual_seed(0)
    tr = explain(torch.rand(*shape))
    fig = F.tensor_figure(tr, step)
    a = tr[step].value
    limit = style.diverging_limit(a.flatten().tolist())
    t = texts(fig)
    ticks = ["−" + style._short(limit), "0", style._short(limit)]
    assert all(s in t for s in ticks), (ticks, t)  # the colour bar's ends and its centre
    faces = {to_hex(p.get_facecolor()) for p in fig.axes[0].patches if isinstance(p, Rectangle)}
    v = float(a.flatten()[0])
    assert to_hex(style.diverging_color(v, limit)) in faces  # a cell shaded by its value


# --- x̂ and the broadcast: the missing links of the picture chain -------------------------------


def test_xhat_figure_draws_each_cell_and_each_channels_statistics(trace, x):
    t = texts(F.xhat_figure(trace))
    xhat = (x - x.mean(dim=(0, 2, 3), keepdim=True)) / torch.sqrt(
        x.var(dim=(0, 2, 3), unbiased=False, keepdim=True) + 1e-5
    )
    for v in (*x.flatten().tolist(), *xhat.flatten().tolist()):
        assert F.format_value(v) in t, v
    joined = "\n".join(t)
    assert "μ=0.4154" in joined and "σ²=0.0464" in joined  # channel 0
    assert "μ=0.4165" in joined and "σ²=0.0671" in joined  # channel 1
    assert joined.count("first cell:") == 2  # a worked example per channel


def test_broadcast_figure_repeats_the_statistics_over_the_batch(trace):
    fig = F.broadcast_figure(trace)
    t = texts(fig)
    assert t.count("0.4154") == 1 + 8  # stored once, repeated over N·H·W = 8 cells
    assert t.count("0.0671") == 1 + 8
    joined = "\n".join(t)
    assert "shape [1, 2, 1, 1]" in joined and "[2, 2, 2, 2]" in joined


def test_affine_figure_works_every_channel(trace, torch_bn):
    _, _, y = torch_bn
    joined = "\n".join(texts(F.affine_figure(trace)))
    assert "c=0, n=0, first cell: y = 2 × 0.3750 + 3" in joined
    assert "c=1, n=0, first cell: y = 5 × (-0.4207) + 8" in joined
    assert F.format_value(float(y[0, 1, 0, 0])) in joined


def test_illustrated_figures_follow_the_computation():
    from bnlab.explain import examples

    keys = [f.key for f in examples.build("seed-illustrated").figures]
    assert keys == [
        "illustrated-input",
        "illustrated-step1",
        "illustrated-broadcast",
        "illustrated-xhat",
        "illustrated-step2",
        "illustrated-overview",
    ]


# --- PNGs at 2x ----------------------------------------------------------------------------------


def test_png_has_twice_the_pixels_and_says_its_css_width(trace):
    fig = F.tensor_figure(trace)
    png2, png1 = F.render(fig, "png"), F.render(fig, "png", scale=1)
    w1 = int.from_bytes(png1[16:20], "big")
    w2 = int.from_bytes(png2[16:20], "big")
    assert abs(w2 - 2 * w1) <= 2
    assert F.display_width(png2) == pytest.approx(w1, abs=1)
    assert F.display_width(png1) == w1
    with pytest.raises(BNValueError):
        F.render(fig, "png", scale=0)
    with pytest.raises(BNValueError):
        F.display_width(b"GIF89a" + b"\0" * 30)


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
    monkeypatch.setattr(style, "cjk_font_available", lambda: False)  # where it is looked up
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


# --- one type scale: nothing smaller than MIN_TEXT_PX as the page shows it ---------------------


def shown_text_px(fig: Figure, page_width: float = style.PAGE_WIDTH) -> list[tuple[float, str]]:
    """(CSS px as the page shows it, text) of every drawn text of ``fig``.

    The page shows a PNG at ``display_width`` CSS px, scaled down to ``page_width`` when wider; a
    font of s pt is s·DPI/72 CSS px before that. Mathtext is measured glyph by glyph (sub- and
    superscripts are drawn smaller).
    """
    png = F.render(fig, "png")
    width = style.display_width(png)
    shrink = min(1.0, page_width / width)
    parser = MathTextParser("path")
    out = []
    for t in fig.findobj(Text):
        s = t.get_text()
        if not s.strip() or not t.get_visible():
            continue
        size = t.get_fontsize()
        body, ismath = t._preprocess_math(s)
        if ismath is True:
            glyphs = parser.parse(body, dpi=72, prop=t.get_fontproperties()).glyphs
            size = min((g[1] for g in glyphs), default=size)
        out.append((size * F.DPI / 72 * shrink, s))
    return out


def _tour_specs():
    from bnlab.explain import tour

    return [spec for sec in tour.build_sections() for spec in sec.figures]


@pytest.fixture(scope="module")
def tour_specs():
    return _tour_specs()


def test_every_tour_figure_is_at_least_11_px(tour_specs):
    assert len(tour_specs) >= 10
    small = []
    for spec in tour_specs:
        sizes = shown_text_px(spec.factory())
        assert sizes, spec.key
        small += [(spec.key, round(px, 1), s[:40]) for px, s in sizes if px < style.MIN_TEXT_PX]
    assert not small, small[:10]


def test_compare_page_figures_are_at_least_11_px():
    from bnlab.experiments import compare
    from bnlab.explain.results import LENETS, results_dir

    root = results_dir()
    if root is None or not (root / "lenet-bn").is_dir():
        pytest.skip("no committed runs")
    runs, _ = compare.expand([root / n for n in LENETS if (root / n).is_dir()])
    fig1, _ = compare.expand([root / "bn-paper-fig1"])
    sweep, _ = compare.expand([root / "lr-sweep"])
    page = 1280  # compare.PAGE_CSS: body { max-width: 1280px }
    for fig in (
        compare.curves_figure(runs),
        compare.bands_figure(fig1),
        compare.sweep_figure(sweep),
    ):
        small = [(round(px, 1), s[:40]) for px, s in shown_text_px(fig, page) if px < 11]
        assert not small, small[:10]


def test_the_size_rule_catches_a_wide_figure():
    fig = Figure(figsize=(20, 2))  # 2400 CSS px shown at 1000: 9 pt → 6.25 px
    fig.text(0.99, 0.5, "tiny", fontsize=9, ha="right")  # the two span the whole width
    fig.text(0.01, 0.5, r"$x_i$", fontsize=30)  # the subscript: 0.7 × 30 pt
    sizes = dict((s, px) for px, s in shown_text_px(fig))
    assert sizes["tiny"] == pytest.approx(9 * 120 / 72 * 1000 / 2400, rel=0.05)
    assert sizes[r"$x_i$"] == pytest.approx(21 * 120 / 72 * 1000 / 2400, rel=0.05)


# --- the new links of the chain are pinned like the others ----------------------------------------


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("illustrated-xhat.svg", F.xhat_figure),
        ("illustrated-broadcast.svg", F.broadcast_figure),
        ("illustrated-overview.svg", F.walkthrough_figure),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_svg_goldens_of_the_chain(request, name, make):
    from tests import golden

    tr = explain(seed_x(), GAMMA, BETA)
    svg = F.render(make(tr), "svg").decode("utf-8")
    golden.check(request, name, svg)
