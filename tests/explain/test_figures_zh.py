"""The figures in Chinese: every label of every tour figure, and English left as it was.

Inside ``figures.language("zh")`` a figure carries Chinese labels only; code, symbols, numbers,
formulas and run names stay as they are. Outside it (``language("en")``, the default) the
figures are byte for byte the SVG goldens.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from types import SimpleNamespace

import pytest
import torch

matplotlib = pytest.importorskip("matplotlib")

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from bnlab.errors import BNValueError  # noqa: E402
from bnlab.explain import explain, tour  # noqa: E402
from bnlab.explain import figures as F  # noqa: E402
from bnlab.explain.examples import FigureSpec  # noqa: E402
from bnlab.render import style  # noqa: E402
from tests.explain.test_figures import shown_text_px  # noqa: E402
from tests.golden import GOLDEN  # noqa: E402

needs_cjk = pytest.mark.skipif(not F.cjk_font_available(), reason="no CJK font installed")

# English words a Chinese figure may still show, each one code, a symbol or a proper name:
ALLOWED = {
    "keepdim",  # keepdim=True, the argument as written in code
    "True",
    "dim",  # x.mean(dim=0), "不指定 dim"
    "running_mean",  # the buffers' names, as torch spells them
    "running_var",
    "torch",  # x = torch.arange(12.).reshape(4, 3)
    "sigmoid",  # the textbook says "sigmoid 函数" too
    "LeNet",  # model and data set names
    "MLP",
    "Fashion",
    "MNIST",
}
# Two-letter words (BN, lr, eps as ε) never count; nor does an attribute written after a dot
# (x.shape, x.mean, .reshape) nor a formula between $…$ (\frac, \sigma, \mathrm).
WORD = re.compile(r"(?<![.\\A-Za-z0-9_])[A-Za-z_][A-Za-z0-9_]*")
MATH = re.compile(r"\$[^$]*\$")
CJK = re.compile(r"[\u2e80-\u9fff\uff00-\uffef]")


def _run_names() -> list[str]:
    """The committed runs' names as the figures show them (they stay as they are), longest first."""
    from bnlab.experiments import compare
    from bnlab.explain.results import results_dir

    root = results_dir()
    if root is None:
        return []
    names: list[str] = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            runs, _ = compare.expand([d])
        except BNValueError:  # not a run nor a suite (e.g. a folder of plots)
            continue
        labels = [r.label for r in runs]
        names += labels  # a name shown twice also shows its folder: plots._labels
        names += [f"{r.path.parent.name}/{r.path.name}" for r in runs if labels.count(r.label) > 1]
    return sorted(set(names), key=lambda n: (-len(n), n))


def english_words(s: str, run_names: Sequence[str] = ()) -> list[str]:
    """The words of ``s`` with three letters or more that a Chinese figure may not show."""
    s = MATH.sub(" ", s)
    for name in run_names:  # longest first: lenet-bn-torch before lenet-bn before lenet
        s = s.replace(name, " ")
    found = []
    for token in WORD.findall(s):
        if token in ALLOWED:
            continue
        found += [w for w in re.findall(r"[A-Za-z]+", token) if len(w) >= 3 and w not in ALLOWED]
    return found


def drawn_texts(fig: Figure) -> list[str]:
    """Every text of ``fig`` once it is drawn (tick labels exist only then), no glyph missing."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        F.render(fig, "png")
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
    missing += [str(w.message) for w in caught if "does not have a glyph" in str(w.message)]
    assert not missing, missing[:3]
    return [t.get_text() for t in fig.findobj(Text) if t.get_text().strip()]


def test_english_words_finds_english_and_spares_code():
    assert english_words("channel c=0") == ["channel"]
    assert english_words("样本 n=1 (sample)") == ["sample"]
    assert english_words("x.shape = [2, 2]，ε = 1e-05") == []
    assert english_words(r"均值 $\mu_B = \frac{1}{m}\sum x_i$") == []
    assert english_words("x.mean(dim=0, keepdim=True)") == []
    assert english_words("running_mean：均值的移动平均") == []
    names = ["bn-paper-fig1/with-bn", "lenet-bn"]
    assert english_words("lenet-bn 和 BN、lr", names) == []
    assert english_words("bn-paper-fig1/with-bn\n模块 9", names) == []
    assert english_words("with lenet", names) == ["with", "lenet"]


# --- every tour figure, in Chinese --------------------------------------------------------------


@pytest.fixture(scope="module")
def tour_specs() -> list[FigureSpec]:
    return [spec for sec in tour.build_sections() for spec in sec.figures]


@needs_cjk
def test_every_tour_figure_is_labelled_in_chinese(tour_specs):
    names = _run_names()
    assert len(tour_specs) >= 10
    english: list[tuple[str, str, list[str]]] = []
    for spec in tour_specs:
        with F.language("zh"):
            fig = spec.factory()
        texts = drawn_texts(fig)
        assert any(CJK.search(s) for s in texts), f"{spec.key}: no Chinese label"
        english += [(spec.key, s, w) for s in texts if (w := english_words(s, names))]
    assert not english, english[:10]


@needs_cjk
def test_every_chinese_tour_figure_is_at_least_11_px(tour_specs):
    small = []
    for spec in tour_specs:  # Chinese labels have other widths: the page may scale a figure more
        with F.language("zh"):
            fig = spec.factory()
        small += [
            (spec.key, round(px, 1), s[:40])
            for px, s in shown_text_px(fig)
            if px < style.MIN_TEXT_PX
        ]
    assert not small, small[:10]


def _eval_trace():
    torch.manual_seed(0)
    x = torch.rand(2, 2, 2, 2)
    return explain(
        x,
        [2.0, 5.0],
        [3.0, 8.0],
        training=False,
        running_mean=[0.4, 0.45],
        running_var=[0.05, 0.07],
    )


def _trace(*shape: int):
    torch.manual_seed(1)
    return explain(torch.rand(*shape))


# the figures' other cases, beyond the tour's: eval mode, 2-D and 3-D inputs, tensors too large to
# print, the centred steps, other group counts
VARIANTS = {
    "stats-eval": lambda: F.stats_figure(_eval_trace()),
    "affine-eval": lambda: F.affine_figure(_eval_trace()),
    "xhat-eval": lambda: F.xhat_figure(_eval_trace()),
    "broadcast-eval": lambda: F.broadcast_figure(_eval_trace()),
    "walkthrough-eval": lambda: F.walkthrough_figure(_eval_trace()),
    "stats-2d": lambda: F.stats_figure(_trace(4, 3)),
    "broadcast-3d": lambda: F.broadcast_figure(_trace(3, 2, 5)),
    "tensor-1x1": lambda: F.tensor_figure(_trace(3, 2)),
    "tensor-shaded": lambda: F.tensor_figure(_trace(4, 3, 8, 8)),
    "tensor-centred-shaded": lambda: F.tensor_figure(_trace(4, 3, 8, 8), "xhat"),
    "tensor-output": lambda: F.tensor_figure(_trace(2, 2, 2, 2), "output"),
    "stats-shaded": lambda: F.stats_figure(_trace(4, 3, 8, 8)),
    "axes-1-group": lambda: F.axes_figure(1, channels=4),
    "axes-8-groups": lambda: F.axes_figure(8, channels=8),
}


@needs_cjk
@pytest.mark.parametrize("name", list(VARIANTS))
def test_other_cases_are_labelled_in_chinese(name):
    with F.language("zh"):
        fig = VARIANTS[name]()
    texts = drawn_texts(fig)
    assert any(CJK.search(s) for s in texts)
    english = [(s, w) for s in texts if (w := english_words(s))]
    assert not english, english[:10]


@needs_cjk
def test_the_language_is_read_when_a_figure_is_built():
    tr = explain(torch.rand(2, 2, 2, 2), [2.0, 5.0], [3.0, 8.0])
    with F.language("zh"):
        assert F.figure_lang() == "zh"
        fig = F.tensor_figure(tr)
        with F.language("en"):  # nested: the inner block wins, then the outer one is back
            assert F.figure_lang() == "en"
        assert F.tr("channel", "通道") == "通道"
    assert F.figure_lang() == "en"
    texts = [t.get_text() for t in fig.findobj(Text)]
    assert "通道 c=0" in texts and "样本 n=1" in texts
    assert not any("channel" in s or "sample" in s for s in texts)


@needs_cjk
def test_the_tour_renders_its_figures_in_its_language():
    seen: list[str] = []

    def factory() -> Figure:
        seen.append(F.figure_lang())
        return F.mean_dims_figure()

    sections = [SimpleNamespace(figures=[FigureSpec("mean-dims", "", factory)])]
    zh = tour.render_figures(sections, "zh")  # type: ignore[arg-type]
    en = tour.render_figures(sections)  # type: ignore[arg-type]
    assert seen == ["zh", "en"]
    assert zh["mean-dims"] != en["mean-dims"]
    assert F.figure_lang() == "en"


def test_language_refuses_other_languages():
    with pytest.raises(BNValueError, match="lang must be one of en, zh"), F.language("fr"):
        pass


def test_without_the_cjk_font_a_chinese_figure_falls_back_to_english(monkeypatch):
    monkeypatch.setattr(style, "cjk_font_available", lambda: False)  # where it is looked up
    with F.language("zh"):
        assert F.figure_lang() == "en"
        fig = F.axes_figure(2)
    texts = [t.get_text() for t in fig.findobj(Text)]
    assert "Batch Norm" in texts
    assert not [s for s in texts if CJK.search(s)]  # never a row of empty boxes


# --- English stays as it was --------------------------------------------------------------------


def _seed_trace():
    torch.manual_seed(0)
    return explain(torch.rand(2, 2, 2, 2), [2.0, 5.0], [3.0, 8.0])


GOLDEN_FIGURES = {
    "illustrated-step1.svg": lambda: F.stats_figure(_seed_trace()),
    "illustrated-step2.svg": lambda: F.affine_figure(_seed_trace()),
    "illustrated-xhat.svg": lambda: F.xhat_figure(_seed_trace()),
    "illustrated-broadcast.svg": lambda: F.broadcast_figure(_seed_trace()),
    "illustrated-overview.svg": lambda: F.walkthrough_figure(_seed_trace()),
    "mean-dims.svg": lambda: F.mean_dims_figure(),
    "axes.svg": lambda: F.axes_figure(2),
}


@pytest.mark.parametrize("name", list(GOLDEN_FIGURES))
def test_english_figures_are_the_goldens_after_a_chinese_one(name):
    make = GOLDEN_FIGURES[name]
    with F.language("zh"):
        make()  # a Chinese figure first: nothing of it may stay behind
    with F.language("en"):
        svg = F.render(make(), "svg").decode("utf-8")
    # compared, never rewritten: --regen-golden is test_golden.py's, for English changes on purpose
    assert svg == (GOLDEN / name).read_text(encoding="utf-8"), f"{name} differs from its golden"
