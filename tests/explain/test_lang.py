"""The tour in both languages: the same numbers, and Chinese with no English prose left over.

``bnlab tour --lang zh`` tells the walkthrough in the source's and the textbook's Chinese; code,
symbols, tensor prints and the names of torch's and bnlab's functions stay as they are.
"""

from __future__ import annotations

import copy
import html as html_lib
import pickle
import re

import pytest

from bnlab.explain import examples, html, text, tour
from bnlab.explain.lang import LANGS, Say, caption, check_lang, say
from tests import golden

# English words the Chinese tour keeps: names of code, libraries, models and datasets
KEPT = {
    "bnlab", "torch", "momentum", "eps", "dim", "keepdim", "mean", "var", "True", "LeNet",
    "LeNetBN", "Chan", "FashionMNIST", "BN", "sigmoid", "Pytorch", "PyTorch", "train", "eval",
    "illustrated", "explain", "fc", "conv", "serve", "inspect", "lenetbn", "CPU",
}  # fmt: skip
NUMBER = re.compile(r"-?\d+\.\d{3,}(?:e[+-]\d+)?")


@pytest.fixture(scope="module")
def sections():
    return tour.build_sections()


def _prose(rendered: str, sections) -> list[str]:
    """The lines a learner reads as prose: not code, not computed prints (indented)."""
    code = {("    " + line).rstrip() for s in sections for line in s.code.splitlines()}
    return [
        ln for ln in rendered.splitlines() if ln.rstrip() not in code and not ln.startswith("    ")
    ]


def _english_words(lines: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in lines:
        for token in re.findall(r"[A-Za-z_][A-Za-z0-9_.()=,'\[\]:/?&-]*", line):
            if re.search(r"[_.\d(=:/]", token):  # identifiers, calls, shapes, links: code
                continue
            word = re.sub(r"[^A-Za-z]", "", token)
            if len(word) >= 2 and word not in KEPT:
                found[word] = found.get(word, 0) + 1
    return found


def test_say_carries_both_languages():
    s = Say("mean", "均值")
    assert s == "mean" and s + "!" == "mean!" and say(s, "en") == "mean" and say(s, "zh") == "均值"
    for twin in (copy.deepcopy(s), pickle.loads(pickle.dumps(s))):
        assert twin.zh == "均值"
    assert say("steps", "zh") == "计算步骤" and say("anything else", "zh") == "anything else"
    assert LANGS == ("en", "zh") and check_lang("zh") == "zh"
    with pytest.raises(ValueError, match="lang must be one of en, zh"):
        check_lang("fr")


def test_both_languages_show_the_same_numbers(sections):
    en, zh = text.sections_text(sections, "en"), text.sections_text(sections, "zh")
    assert NUMBER.findall(en) == NUMBER.findall(zh)
    assert len(NUMBER.findall(en)) > 200  # the tables and checks are really compared
    page_en = html.page(tour.TITLE, tour.TITLE_ZH, tour.INTRO, sections, {}, "en")
    page_zh = html.page(tour.TITLE, tour.TITLE_ZH, tour.INTRO, sections, {}, "zh")
    assert NUMBER.findall(page_en) == NUMBER.findall(page_zh)


def test_no_english_prose_in_the_chinese_text(sections):
    zh = text.sections_text(sections, "zh")
    assert _english_words(_prose(zh, sections)) == {}
    # the check can fail: the English text is full of such words
    assert len(_english_words(_prose(text.sections_text(sections, "en"), sections))) > 50


def test_no_english_prose_in_the_chinese_page(sections):
    page = html.page(tour.TITLE, tour.TITLE_ZH, tour.INTRO, sections, {}, "zh")
    assert page.count("<html lang='zh'>") == 1
    body = re.sub(r"<pre>.*?</pre>|<pre class='printed'>.*?</pre>|<style>.*?</style>", "",
                  page, flags=re.S)  # fmt: skip
    visible = html_lib.unescape(re.sub(r"<[^>]+>", "\n", body))
    assert _english_words(visible.splitlines()) == {}


def test_every_figure_has_a_chinese_caption(sections):
    for s in sections:
        for fig in s.figures:
            words = caption(fig.key, fig.caption, "zh")
            assert re.search(r"[\u4e00-\u9fff]", words), (s.key, fig.key, words)


def test_the_chinese_tour_page(tmp_path):
    result = tour.run(tmp_path / "zh", lang="zh")
    page = result.index.read_text(encoding="utf-8")
    assert "<html lang='zh'>" in page and "批量归一化图解" in page and "预测时的批量归一化" in page
    assert "https://" not in page and "src='http" not in page
    assert "http://127.0.0.1:8000/?" in page and "lang=zh" in page  # the exercises' links
    assert result.figures and all(p.exists() for p in result.figures)


@pytest.mark.usefixtures("every_backend")  # explanations run the portable kernels
def test_text_of_the_whole_tour_in_chinese(request):
    sections = [examples.build(n) for n in examples.TOUR_ORDER if n not in examples.RESULT_SECTIONS]
    golden.check(request, "tour-zh.txt", text.sections_text(sections, "zh"))


def test_the_summary_counts_what_the_tour_checked(sections):
    summary = sections[-1]
    assert summary.key == "summary" and summary.exercises
    checks = [c for s in sections[:-1] for c in s.checks]
    assert summary.data["checks"] == len(checks) and summary.data["failed"] == 0
    assert f"compared {len(checks)} computed steps with torch" in summary.intro
    assert f"把 {len(checks)} 个计算步骤与 torch 对照" in summary.intro.zh
