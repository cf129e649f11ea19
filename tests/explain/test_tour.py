"""``bnlab tour``: one self-contained page with the whole source document, in its order."""

from __future__ import annotations

import re

import pytest

from bnlab.explain import examples, tour
from bnlab.explain.exercises import EXPLORER
from bnlab.explain.text import make_console


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    import io

    buf = io.StringIO()
    res = tour.run(tmp_path_factory.mktemp("tour"), make_console(file=buf))
    res.terminal = buf.getvalue()  # type: ignore[attr-defined]
    return res


def test_page_is_self_contained(result):
    page = result.index.read_text(encoding="utf-8")
    # nothing is fetched: images are data: URIs; the only links are #anchors, the
    # exercises' links into the local explorer, which load nothing until clicked, and the
    # pages the tour wrote beside itself (the BN health checks), self-contained too
    assert "https://" not in page
    assert not re.search(r"""src=['"](?!data:)""", page), "only data: images"
    for href in re.findall(r"""href=['"]([^'"]+)""", page):
        if href.startswith(("#", EXPLORER + "?")):
            continue
        beside = result.index.parent / href
        assert beside.is_file() and ":" not in href and not href.startswith("/"), href
        other = beside.read_text(encoding="utf-8")
        assert "https://" not in other and not re.search(r"""src=['"](?!data:)""", other)
    assert all(u.startswith(EXPLORER) for u in re.findall(r"http://[^'\"\s<]+", page))
    assert "<script" not in page and "@import" not in page and "url(" not in page


def test_page_has_every_section_in_the_source_order(result):
    page = result.index.read_text(encoding="utf-8")
    positions = [page.index(f"<section id='{key}'>") for key in examples.TOUR_ORDER]
    assert positions == sorted(positions)
    for zh in (
        "对全连接层做批量归一化",
        "对卷积层做批量归一化",
        "预测时的批量归一化",
        "均值方差计算公式",
        "批量归一化方差均值计算",
        "批量归一化图解",
    ):
        assert zh in page


def test_page_has_figures_and_checks(result):
    page = result.index.read_text(encoding="utf-8")
    imgs = re.findall(r"<img alt='[^']*' width='\d+' src='data:image/png;base64,", page)
    assert len(imgs) >= 6
    assert len(result.figures) == len(imgs)
    checks = re.findall(r"<p class='check (ok|bad)'>([^<]*)</p>", page)
    assert checks and all(kind == "ok" for kind, _ in checks)
    assert any("matches torch.nn.BatchNorm2d: max |Δ| = " in line for _, line in checks)
    assert any("matches torch.nn.BatchNorm1d: max |Δ| = " in line for _, line in checks)


def test_terminal_walkthrough_and_path(result):
    out = result.terminal
    assert "torch.Size([1, 2, 1, 1])" in out and "批量归一化图解" in out
    assert out.rstrip().endswith(str(result.index.resolve()))
    assert "0 failed" in out


def test_seed_shapes_printed_like_the_source(result):
    by_key = {s.key: s for s in result.sections}
    for key in ("seed-fc", "seed-conv"):
        assert by_key[key].printed == by_key[key].source_printed
