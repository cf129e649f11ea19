"""The browser tests' fixtures: two tiny training runs, a live server, one Chromium, a page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import CHROMIUM, LAUNCH_ARGS, TIMEOUT_MS, VIEWPORT, Recorder, live_server, write_run


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    write_run(root / "with-bn", "with-bn", "bnlab", ["2", "6"], spread=0.2)
    write_run(root / "no-bn", "no-bn", None, ["1", "4"], spread=3.0)
    return root


@pytest.fixture(scope="module")
def base_url(runs_dir: Path) -> Iterator[str]:
    with live_server(runs_dir) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, timeout=30_000)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, base_url: str):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    pg.recorder = Recorder(pg, base_url)  # type: ignore[attr-defined]
    try:
        yield pg
    finally:
        context.close()
