"""The explorer in Chinese: every visible word translated, every number the same as in English.

The zh/en toggle redraws each string from one catalog (static/i18n.js, the same keys for both
languages); ``lang`` is part of the link and sets ``<html lang>``.  What stays English is code
(``<code>``), data (``translate="no"``: run names, the language toggle) and a short list of names
and symbols.  The server, browser and recorder are test_browser's (see its docstring);
screenshots go to ``tests/web/artifacts/``.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest

from .harness import require_chromium

require_chromium()

from playwright.sync_api import Page  # noqa: E402

from .harness import new_page, set_value, shot, wait_idle  # noqa: E402

ALLOWED = {"bnlab", "BatchNorm2d", "torch"}  # names; single letters (N, C, H, W, x, …) are symbols
ENGLISH = re.compile(r"[A-Za-z]{2,}")
NUMBER = re.compile(r"-?\d+\.\d+|\d+")

VISIBLE_WORDS = """() => {
  // the page's visible text, less code and data (translate="no")
  let text = document.body.innerText;
  for (const el of document.querySelectorAll('code, [translate=no]')) {
    if (el.parentElement.closest('code, [translate=no]')) continue;
    const t = el.innerText ?? el.textContent;
    if (t) text = text.replace(t, ' ');
  }
  return text;
}"""


def english_words(page: Page) -> set[str]:
    return set(ENGLISH.findall(page.evaluate(VISIBLE_WORDS))) - ALLOWED


def numbers(page: Page, selector: str) -> list[str]:
    return sorted(NUMBER.findall(page.inner_text(selector)))


def switch(page: Page, lang: str) -> None:
    page.click('[data-testid="lang"]')
    page.wait_for_function(f"document.documentElement.lang.startsWith('{lang}')")
    wait_idle(page)


STATES = [
    ("batch norm, a pinned cell", "", ['[data-testid="cell-output-1-0-1-0"]']),
    ("eval mode", "mode=eval&pin=0,1,0,0", []),
    ("group norm", "norm=group&shape=2,4,2,2&groups=2&pin=1,3,1,1", []),
    ("layer norm, fully connected", "layout=fc&shape=4,3&norm=layer&pin=2,1", []),
    ("typed values", "values=1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,9", []),
    ("a bad link", "eps=abc&foo=1", []),
    ("the training view", "tab=training", []),
]


@pytest.mark.parametrize(("case", "params", "clicks"), STATES, ids=[s[0] for s in STATES])
def test_chinese_leaves_no_english_word_and_changes_no_number(
    browser, base_url: str, case: str, params: str, clicks: list[str]
) -> None:
    with new_page(browser, base_url) as pg:
        pg.goto(f"{base_url}/?{params}")
        wait_idle(pg)
        if "training" in params:
            pg.wait_for_selector('[data-testid="band-a-0"]')
        for sel in clicks:
            pg.click(sel)
        where = "#view-training" if "training" in params else "#view-explorer"
        before = numbers(pg, where)
        assert pg.evaluate("document.documentElement.lang") == "en"
        switch(pg, "zh")
        assert "lang=zh" in pg.url
        left = english_words(pg)
        assert not left, f"{case}: English left in the Chinese page: {sorted(left)}"
        assert numbers(pg, where) == before, case  # the same numbers, only the words change
        assert pg.title() == "bnlab — 批量归一化演示"
        shot(pg, f"zh-{case.replace(' ', '-').replace(',', '')}")
        switch(pg, "en")
        assert numbers(pg, where) == before
        assert pg.title() == "bnlab — batch normalization explorer"
        pg.recorder.assert_clean()


def test_the_catalog_has_the_same_keys_in_both_languages(page: Page, base_url: str) -> None:
    page.goto(base_url + "/")
    wait_idle(page)
    keys = page.evaluate(
        """async () => {
          const { CATALOG } = await import('/static/i18n.js');
          return { en: Object.keys(CATALOG.en).sort(), zh: Object.keys(CATALOG.zh).sort() };
        }"""
    )
    assert keys["en"] == keys["zh"] and len(keys["en"]) > 100
    page.recorder.assert_clean()


def test_a_chinese_link_opens_in_chinese_with_its_errors_in_chinese(browser, base_url: str) -> None:
    with new_page(browser, base_url) as pg:
        pg.goto(f"{base_url}/?lang=zh&norm=layer")
        wait_idle(pg)
        assert pg.evaluate("document.documentElement.lang") == "zh-CN"
        assert "层归一化" in pg.inner_text('[data-testid="summary"]')
        assert "LayerNorm" in pg.inner_text('[data-testid="chan-hint"]')  # per element, per channel
        set_value(pg, "eps", "0")
        wait_idle(pg)
        error = pg.locator('[data-testid="error"]')
        assert error.get_attribute("data-field") == "eps"
        assert "ε" in error.inner_text() and not ENGLISH.search(error.inner_text())
        assert not english_words(pg)
        shot(pg, "zh-error")
        pg.recorder.assert_clean()


def server_details(base_url: str) -> list[str]:
    """Real 422 messages of the API, for bodies the page itself would never send."""
    bodies = [
        {"eps": 0},
        {"seed": -1},
        {"shape": [2, 0]},
        {"shape": [64, 64, 2]},
        {"gamma": [1.0]},
        {"norm": "group", "groups": 3},
        {"norm": "instance", "shape": [2, 2]},
        {"norm": "layer", "mode": "eval"},
        {"running_var": [-1.0, 1.0]},
        {"values": [1.0, 2.0]},
        {"values": [1.0, None, 1.0, 1.0], "shape": [2, 2]},
        {"shape": [1, 2, 1, 1]},
        {"eps": "abc"},
        {"momentum": 2},
        {"mode": "later"},
    ]
    out = []
    for body in bodies:
        req = urllib.request.Request(
            base_url + "/api/explain",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        try:
            urllib.request.urlopen(req, timeout=10)
        except urllib.error.HTTPError as e:
            assert e.code == 422, body
            out.append(json.loads(e.read())["detail"])
        else:
            raise AssertionError(f"{body} was accepted")
    return out


def test_the_servers_422_messages_read_in_chinese(page: Page, base_url: str) -> None:
    details = server_details(base_url)
    page.goto(base_url + "/?lang=zh")
    wait_idle(page)
    shown = page.evaluate(
        """async (details) => {
          const { apiMessage } = await import('/static/i18n.js');
          return details.map(apiMessage);
        }""",
        details,
    )
    for detail, zh in zip(details, shown, strict=True):
        assert "服务器拒绝了这个值" not in zh, (detail, zh)  # a translation, not the fallback
        words = set(ENGLISH.findall(zh)) - {"float32"}
        assert not words, (detail, zh, words)
        same = sorted(NUMBER.findall(detail.split(":", 1)[1]))  # the same numbers, any order
        assert same == sorted(NUMBER.findall(zh.split("：", 1)[1])), (detail, zh)
    page.recorder.assert_clean()
