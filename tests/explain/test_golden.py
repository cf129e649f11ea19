"""Rendered text, SVG and HTML are deterministic and equal their golden files.

After a deliberate change: ``pytest tests/explain/test_golden.py --regen-golden``, then review
the diff of tests/golden/ before committing it.
"""

from __future__ import annotations

import re

import pytest
import torch

from bnlab.cli import main
from bnlab.explain import examples, explain, figures, html, text
from tests import golden

# explain's traces run the portable kernels whatever the backend (a recorder needs each step):
# their goldens hold for every backend.  The tour also trains a BatchNorm2d on a stream, whose
# printed digits are the kernels' rounding: its golden is the portable backend's.
every_backend = pytest.mark.usefixtures("every_backend")


def _seed_trace():
    torch.manual_seed(0)
    return explain(torch.rand(2, 2, 2, 2), [2.0, 5.0], [3.0, 8.0])


def _strip_images(page: str) -> str:
    """PNG bytes depend on the font rasterizer; the SVG goldens pin the drawings instead."""
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,…", page)


def _cli(capsys, *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


@every_backend
def test_text_of_the_illustrated_example(request, capsys):
    golden.check(request, "explain-seed-illustrated.txt", _cli(capsys, "explain"))


@every_backend
def test_text_of_a_learners_tensor(request, capsys):
    out = _cli(
        capsys, "explain", "--shape", "3,2,2", "--seed", "1", "--gamma", "2,5", "--beta", "3,8"
    )
    golden.check(request, "explain-shape-3-2-2.txt", out)


@every_backend  # explanations run the portable kernels: the same digits either way
def test_text_of_the_whole_tour(request):
    # the source's sections; "experiments" reads committed run results, which change by design
    sections = [examples.build(n) for n in examples.TOUR_ORDER if n not in examples.RESULT_SECTIONS]
    golden.check(request, "tour.txt", text.sections_text(sections))


@every_backend
@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("illustrated-step1.svg", lambda: figures.stats_figure(_seed_trace())),
        ("illustrated-step2.svg", lambda: figures.affine_figure(_seed_trace())),
        ("mean-dims.svg", lambda: figures.mean_dims_figure()),
        ("axes.svg", lambda: figures.axes_figure(2)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_svg_figures(request, name, make):
    svg = figures.render(make(), "svg").decode("utf-8")
    assert svg == figures.render(make(), "svg").decode("utf-8"), "SVG differs between two runs"
    golden.check(request, name, svg)


@every_backend
def test_html_of_the_illustrated_example(request, capsys):
    page = _cli(capsys, "explain", "--example", "seed-illustrated", "--format", "html")
    golden.check(request, "explain-seed-illustrated.html", _strip_images(page))


@every_backend
def test_trace_fragment(request):
    golden.check(request, "trace-fragment.html", html.trace_fragment(_seed_trace()) + "\n")
