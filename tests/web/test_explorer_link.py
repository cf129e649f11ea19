"""The page's code and its link: ES modules served as JavaScript, the whole state in the URL.

A link (``?shape=…&seed=…&gamma=…&beta=…&eps=…&mode=…&norm=…&groups=…&layout=…&pin=…&lang=…
&tab=…[&values=…][&step=K]``) reproduces what the learner sees: set through the controls, read
back from the address bar, opened fresh.  A bad parameter is ignored with a visible note naming
it, never a console error.  The server, browser and recorder are test_browser's (see its
docstring); screenshots go to ``tests/web/artifacts/``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import torch
import torch.nn.functional as F

from .harness import require_chromium

require_chromium()

from playwright.sync_api import Page  # noqa: E402

from .harness import (  # noqa: E402
    CALC,
    TOL,
    assert_drawn,
    new_page,
    open_explorer,
    read_cells,
    seed_batch,
    set_value,
    shot,
    wait_idle,
)

STATIC = Path(__file__).resolve().parents[2] / "src" / "bnlab" / "web" / "static"
DRAWN = ["input", "mean", "var", "x_minus_mean", "xhat", "output"]


def query(page: Page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def what_is_seen(page: Page) -> dict:
    """Everything a link must reproduce: the cells, the controls, the pinned cell's drawer."""
    pinned = page.eval_on_selector_all(
        '[data-testid="grid-output"] .picked', "els => els.map(e => e.dataset.testid)"
    )
    editing = page.locator('[data-testid^="value-"]').count() > 0
    return {
        "cells": {
            step: read_cells(page, step) for step in DRAWN if not (editing and step == "input")
        },
        "typed": page.eval_on_selector_all(
            '[data-testid^="value-"]', "els => els.map(e => Number(e.value).toFixed(4))"
        ),
        "gamma": [e.input_value() for e in page.locator('[data-testid^="gamma-"]').all()],
        "beta": [e.input_value() for e in page.locator('[data-testid^="beta-"]').all()],
        "eps": page.input_value('[data-testid="eps"]'),
        "mode": "eval" if page.is_checked('[data-testid="mode-eval"]') else "train",
        "norm": page.input_value('[data-testid="norm"]'),
        "groups": page.input_value('[data-testid="groups"]'),
        "layout": page.input_value('[data-testid="layout"]'),
        "pinned": pinned,
        "calc": page.inner_text('[data-testid="calc"]'),
    }


def test_the_page_loads_its_modules_as_javascript(page: Page, base_url: str) -> None:
    types: dict[str, str] = {}
    page.on(
        "response",
        lambda r: (
            types.__setitem__(r.url.rsplit("/", 1)[-1], r.headers.get("content-type", ""))
            if r.url.endswith(".js")
            else None
        ),
    )
    open_explorer(page, base_url)
    scripts = page.eval_on_selector_all("script", "els => els.map(e => [e.type, e.src])")
    assert scripts == [["module", base_url + "/static/main.js"]]
    modules = {p.name for p in STATIC.glob("*.js")}
    assert {"main.js", "i18n.js", "state.js", "api.js", "grids.js", "drawer.js"} <= modules
    assert set(types) == modules  # every module is used, none is fetched from elsewhere
    for name, ctype in types.items():
        assert "javascript" in ctype, (name, ctype)
    assert not STATIC.joinpath("app.js").exists()
    page.recorder.assert_clean()


def test_a_state_set_through_the_controls_comes_back_from_its_link(
    browser, page: Page, base_url: str
) -> None:
    open_explorer(page, base_url)
    set_value(page, "size-h", "3")
    set_value(page, "seed", "5")
    set_value(page, "gamma-0", "1.5")
    set_value(page, "beta-1", "-2")
    set_value(page, "eps", "0.001")
    page.check('[data-testid="mode-eval"]')
    wait_idle(page)
    page.click('[data-testid="cell-output-1-0-2-1"]')
    q = query(page)
    assert q["shape"] == "2,2,3,2" and q["seed"] == "5" and q["mode"] == "eval"
    assert q["gamma"] == "1.5,5" and q["beta"] == "3,-2" and q["eps"] == "0.001"
    assert q["pin"] == "1,0,2,1" and q["norm"] == "batch" and q["layout"] == "conv"
    assert "values" not in q  # the seed's values: no list in the link
    before = what_is_seen(page)
    page.reload()
    wait_idle(page)
    assert what_is_seen(page) == before
    # the same link in a fresh page of its own
    with new_page(browser, base_url) as pg:
        pg.goto(page.url)
        wait_idle(pg)
        assert what_is_seen(pg) == before
        assert pg.is_hidden('[data-testid="url-note"]')
        pg.recorder.assert_clean()

    # typed values and group norm travel too
    page.check('[data-testid="mode-train"]')
    set_value(page, "size-c", "4")
    page.select_option('[data-testid="norm"]', "group")
    wait_idle(page)
    page.click('[data-testid="edit-values"]')
    wait_idle(page)
    set_value(page, "value-0-3-1-1", "2.25")
    wait_idle(page)
    q = query(page)
    assert q["norm"] == "group" and q["groups"] == "2" and len(q["values"].split(",")) == 48
    before = what_is_seen(page)
    page.reload()
    wait_idle(page)
    assert page.locator('[data-testid="value-0-3-1-1"]').input_value() == "2.2500"
    assert what_is_seen(page) == before
    page.recorder.assert_clean()


def test_a_deep_link_opened_fresh_draws_its_state(browser, base_url: str) -> None:
    link = (
        "/?shape=2,4,1,2&seed=1&gamma=1,2,3,4&beta=0,0,0,1&eps=1e-3&norm=group&groups=2"
        "&layout=conv&pin=1,3,0,1&lang=en&tab=explorer"
    )
    with new_page(browser, base_url) as pg:
        pg.goto(base_url + link)
        wait_idle(pg)
        x = seed_batch(1, (2, 4, 1, 2))
        gamma, beta = torch.tensor([1.0, 2, 3, 4]), torch.tensor([0.0, 0, 0, 1])
        y = F.group_norm(x, 2, gamma, beta, eps=1e-3)
        assert_drawn(read_cells(pg, "input"), x, "linked input")
        assert_drawn(read_cells(pg, "output"), y, "linked group norm")
        assert pg.input_value('[data-testid="groups"]') == "2"
        assert "[n=1, c=3, h=0, w=1]" in pg.inner_text('[data-testid="calc-cell"]')
        m = CALC.search(pg.inner_text('[data-testid="calc-y"]').strip())
        assert m and abs(float(m["y"]) - y[1, 3, 0, 1].item()) <= TOL
        assert pg.is_hidden('[data-testid="url-note"]')
        shot(pg, "deep-link")
        pg.recorder.assert_clean()


BAD = [
    ("eps=abc", ["eps"]),
    ("shape=2,x,2,2&foo=1", ["shape", "foo"]),
    ("norm=group&groups=3", ["groups"]),  # C = 2: 3 does not divide it
    ("gamma=1,2,3&mode=later&pin=5,0,0,0", ["gamma", "mode", "pin"]),
    ("layout=fc&norm=instance&values=1,2", ["norm", "values"]),
]


@pytest.mark.parametrize(("params", "named"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_parameter_is_ignored_with_a_note(
    browser, base_url: str, params: str, named: list[str]
) -> None:
    with new_page(browser, base_url) as pg:
        pg.goto(f"{base_url}/?{params}")
        wait_idle(pg)
        note = pg.locator('[data-testid="url-note"]')
        assert note.is_visible()
        text = note.inner_text()
        for name in named:
            assert f"{name}=" in text, (name, text)
        assert pg.locator('[data-testid="error"]').count() == 0  # the defaults draw
        q = query(pg)
        assert "foo" not in q and q["eps"] == "1e-5"  # the link is rewritten without them
        pg.recorder.assert_clean()
