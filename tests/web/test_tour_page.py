"""The tour's page in a real browser: it fits a phone and a laptop, loads nothing, and its
exercises open the explorer in exactly the state they ask about.

The tour is built once in each language; the exercises' links (``http://127.0.0.1:8000/?…``,
where ``bnlab serve`` listens) are pointed at the test server.  Screenshots go to
``tests/web/artifacts/``; with ``BNLAB_UPDATE_IMAGES=1`` they also replace the README's
docs/images/tour-*.png on purpose.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from .harness import require_chromium

require_chromium()

from bnlab.explain import tour  # noqa: E402
from bnlab.explain.exercises import EXPLORER  # noqa: E402

from .harness import ARTIFACTS, PHONE, new_page, read_cells, seed_batch, wait_idle  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "docs" / "images"
WIDE = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tour")
    return {lang: tour.run(root / lang, lang=lang).index for lang in ("en", "zh")}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
def test_the_tour_fits_the_screen_and_loads_nothing(browser, pages, lang, viewport):
    context = browser.new_context(viewport=viewport)
    try:
        pg = context.new_page()
        requests: list[str] = []
        pg.on("request", lambda r: requests.append(r.url))
        errors: list[str] = []
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.goto(pages[lang].as_uri())
        fits = pg.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert fits[0] <= fits[1], f"{lang} at {viewport['width']} px: {fits}"
        assert pg.evaluate("document.documentElement.lang") == lang
        assert all(u.startswith(("file://", "data:")) for u in requests), requests
        assert not errors, errors
        # the pictures come first, the numbers folded below them
        order = pg.evaluate(
            """() => [...document.querySelectorAll('#seed-illustrated figure, '
                + '#seed-illustrated details')].map(e => e.tagName)"""
        )
        assert order.index("DETAILS") > order.index("FIGURE") and "DETAILS" in order
        assert not pg.evaluate("document.querySelector('#seed-illustrated details').open")
        name = f"tour-{lang}-{viewport['width']}.png"
        pg.evaluate("document.querySelector('#seed-illustrated').scrollIntoView()")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / name))
        if os.environ.get("BNLAB_UPDATE_IMAGES") == "1":
            shutil.copyfile(ARTIFACTS / name, DOCS / name)
    finally:
        context.close()


def _links(page: Path) -> list[str]:
    html = page.read_text(encoding="utf-8")
    return re.findall(r"href='(" + re.escape(EXPLORER) + r"\?[^']+)'", html)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_each_exercise_opens_the_explorer_in_its_state(browser, base_url, pages, lang):
    links = _links(pages[lang])
    assert len(links) == 6
    for link in links:
        state = {k: v[0] for k, v in parse_qs(urlsplit(link.replace("&amp;", "&")).query).items()}
        url = base_url + "/?" + urlsplit(link.replace("&amp;", "&")).query
        with new_page(browser, base_url) as pg:
            pg.goto(url)
            wait_idle(pg)
            assert pg.evaluate("document.documentElement.lang").startswith(lang), link
            shape = [int(v) for v in state["shape"].split(",")]
            for dim, testid in zip(shape, ("size-n", "size-c", "size-h", "size-w"), strict=True):
                assert pg.input_value(f'[data-testid="{testid}"]') == str(dim), (link, testid)
            assert pg.is_checked(f'[data-testid="mode-{state.get("mode", "train")}"]'), link
            assert pg.input_value('[data-testid="norm"]') == state.get("norm", "batch"), link
            if "eps" in state:
                assert float(pg.input_value('[data-testid="eps"]')) == float(state["eps"])
            if state.get("pin"):
                n, c, h, w = state["pin"].split(",")
                calc = pg.inner_text('[data-testid="calc"]')
                assert f"[n={n}, c={c}, h={h}, w={w}]" in calc, (link, calc)
            if shape != [1, 2, 1, 1]:  # that one is about the state the explorer refuses
                x = seed_batch(int(state["seed"]), tuple(shape))
                cells = read_cells(pg, "input")
                assert len(cells) == x.numel(), link
            assert pg.is_hidden('[data-testid="url-note"]'), link  # every parameter understood
            pg.recorder.assert_clean(allow_status=422)
