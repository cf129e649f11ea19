"""The explorer fits a phone and a laptop: nothing spills sideways, the drawer is a bottom sheet.

At 390×844 and 1280×900, in the explorer view, the training view and with the drawer open,
``document.documentElement.scrollWidth <= innerWidth``; the title is not clipped; on the narrow
screen the drawer is a sheet at the bottom that × and Escape dismiss.  The screenshots of both
widths go to tests/web/artifacts/; with ``BNLAB_UPDATE_IMAGES=1`` they also replace the README's
pictures, docs/images/explorer-1280.png (also explorer.png) and docs/images/explorer-390.png,
on purpose (a test run never rewrites tracked files by itself).  The server, browser and
recorder are test_browser's (see its docstring).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .harness import require_chromium

require_chromium()

from .harness import PHONE, new_page, wait_idle  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "docs" / "images"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
UPDATE_DOCS = os.environ.get("BNLAB_UPDATE_IMAGES") == "1"
WIDE = {"width": 1280, "height": 900}


def fits(pg) -> dict:
    return pg.evaluate(
        """() => {
          const h1 = document.querySelector('h1');
          const r = h1.getBoundingClientRect();
          return {
            wide: document.documentElement.scrollWidth, width: innerWidth,
            title: [h1.scrollWidth, h1.clientWidth, r.left, r.right, r.height],
          };
        }"""
    )


def assert_fits(pg, where: str) -> None:
    got = fits(pg)
    assert got["wide"] <= got["width"], f"{where}: {got}"
    scroll_w, client_w, left, right, height = got["title"]
    assert scroll_w <= client_w and left >= 0 and right <= got["width"], f"{where} title: {got}"
    assert height < 30, f"{where}: the title wraps: {got}"  # one line


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280x900", "390x844"])
def test_nothing_spills_sideways_and_the_drawer_is_a_sheet(
    browser, base_url: str, viewport
) -> None:
    width = viewport["width"]
    with new_page(browser, base_url, viewport) as pg:
        pg.goto(base_url + "/")
        wait_idle(pg)
        assert_fits(pg, "explorer")
        pg.click('[data-testid="cell-output-0-1-1-0"]')
        assert "open" in (pg.get_attribute("#calc-card", "class") or "")
        assert_fits(pg, "drawer open")
        sheet = pg.locator("#calc-card").bounding_box()
        assert sheet is not None
        assert sheet["y"] + sheet["height"] <= viewport["height"] + 1  # at the bottom, in view
        assert sheet["height"] > 100, sheet  # the whole calculation, not a squeezed strip
        if width < 760:
            assert sheet["width"] >= width - 1  # a sheet across the screen
            assert sheet["height"] <= viewport["height"] * 0.45 + 1
        shot_to = ARTIFACTS / f"explorer-{width}.png"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(shot_to))
        if UPDATE_DOCS:
            shutil.copyfile(shot_to, DOCS / shot_to.name)
            if width == 1280:
                shutil.copyfile(shot_to, DOCS / "explorer.png")
        # dismissible: ×, and Escape
        pg.click('[data-testid="calc-close"]')
        assert "open" not in (pg.get_attribute("#calc-card", "class") or "")
        pg.click('[data-testid="cell-output-0-1-1-0"]')
        pg.keyboard.press("Escape")
        assert "open" not in (pg.get_attribute("#calc-card", "class") or "")
        assert "pin=" not in pg.url
        # the stepper and the Chinese page fit too
        pg.click('[data-testid="step-toggle"]')
        pg.click('[data-testid="lang"]')
        pg.wait_for_function("document.documentElement.lang === 'zh-CN'")
        wait_idle(pg)
        assert_fits(pg, "zh, stepping")
        pg.click('[data-testid="tab-training"]')
        pg.wait_for_selector('[data-testid="band-a-0"]')
        assert_fits(pg, "training")
        pg.recorder.assert_clean()
