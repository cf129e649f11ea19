"""What the browser tests share: a live server, a page recorder, and the helpers that read a page.

``live_server(runs)`` serves ``create_app(runs)`` (uvicorn in a thread, loopback, a free port);
``Recorder`` records the page's console errors, page errors, failed requests, error responses and
requests to any other origin, for a test to assert there were none.  The fixtures that use them
(``runs_dir``, ``base_url``, ``browser``, ``page``) are in conftest.py.  Playwright itself is only
imported where a browser starts, so the API tests beside these run without it.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch
import uvicorn

from bnlab.web.app import create_app

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = shutil.which("chromium")


def require_chromium() -> None:
    """Skip the calling test module when there is no ``chromium`` (fail instead in CI)."""
    if CHROMIUM is None and os.environ.get("CI") == "true":
        # CI installs Chromium (make test → system-test): there, a missing browser is a failure
        raise RuntimeError("CI=true but no `chromium` on PATH: the browser tests must run in CI")
    if CHROMIUM is None:
        pytest.skip(
            "no `chromium` executable on PATH: the browser tests drive the system Chromium",
            allow_module_level=True,
        )


ARTIFACTS = Path(__file__).parent / "artifacts"
VIEWPORT = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 10_000  # every wait and action of a test is bounded by this
TOL = 6e-5  # a value drawn to 4 decimals: rounding (5e-5) plus float32 noise
SEED_SHAPE = (2, 2, 2, 2)  # the blog post's example: torch.manual_seed(0); torch.rand(2, 2, 2, 2)
GAMMA, BETA = (2.0, 5.0), (3.0, 8.0)


# ---- a tiny runs folder ------------------------------------------------------------------------


def write_run(folder: Path, name: str, bn: str | None, layers: list[str], spread: float) -> None:
    """config.json, metrics.jsonl (3 epochs) and activations.jsonl as experiments.train writes."""
    folder.mkdir(parents=True)
    config = {
        "name": name,
        "model": "lenet-bn" if bn else "lenet",
        "bn": bn,
        "epochs": 3,
        "lr": 1.0 if bn else 0.9,
        "batch_size": 256,
        "seed": 0,
        "init": "xavier",
        "limit": 4,
        "record_every": 2,
        "precise_last": 1,
        "note": f"{name}: a test run",
        "train_size": 1024,
        "test_size": 256,
        "torch": torch.__version__,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    rows = [
        {
            "epoch": e,
            "step": 4 * e,
            "train_loss": 2.0 / e + (0.0 if bn else 0.4),
            "train_acc": 0.5 + 0.1 * e - (0.0 if bn else 0.15),
            "test_acc": 0.45 + 0.1 * e - (0.0 if bn else 0.2),
            "test_acc_precise": 0.8 if (bn and e == 3) else None,
            "seconds": 0.5,
        }
        for e in (1, 2, 3)
    ]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    records = []
    for step in (1, 2, 4, 6, 8, 10, 12):
        width = spread * step / 12
        records.append(
            {
                "epoch": (step - 1) // 4 + 1,
                "step": step,
                "layers": {
                    layer: {
                        "q15": [-0.5 - width - k, -0.4],
                        "q50": [0.1 * k, 0.0],
                        "q85": [0.5 + width + k, 0.4],
                    }
                    for k, layer in enumerate(layers)
                },
            }
        )
    (folder / "activations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


# ---- a live server and a recorder --------------------------------------------------------------


@contextmanager
def live_server(runs: Path | None) -> Iterator[str]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(runs), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="bnlab-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class Recorder:
    """Everything a page did that a clean page must not: console errors, failures, other hosts."""

    def __init__(self, page: Page, origin: str) -> None:
        self.origin = origin
        self.console: list[str] = []
        self.page_errors: list[str] = []
        self.failed: list[str] = []
        self.bad_responses: list[tuple[int, str]] = []
        self.foreign: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on("response", self._response)
        page.on("request", self._request)

    def _console(self, msg) -> None:
        if msg.type == "error":
            self.console.append(f"{msg.type}: {msg.text}")

    def _response(self, r) -> None:
        if r.status >= 400:
            self.bad_responses.append((r.status, r.url))

    def _request(self, r) -> None:
        if not (r.url.startswith(self.origin + "/") or r.url.startswith("data:")):
            self.foreign.append(r.url)

    def assert_clean(self, allow_status: int | None = None) -> None:
        """No problems; ``allow_status``: the API's expected error status in this test."""
        console = self.console
        bad = self.bad_responses
        if allow_status is not None:
            # Chromium logs each 4xx answer to a fetch as "Failed to load resource" by itself
            expected = f"the server responded with a status of {allow_status}"
            console = [m for m in console if expected not in m]
            bad = [(s, u) for s, u in bad if s != allow_status]
        assert not console, f"console errors: {console}"
        assert not self.page_errors, f"uncaught page errors: {self.page_errors}"
        assert not self.failed, f"failed requests: {self.failed}"
        assert not bad, f"error responses: {bad}"
        assert not self.foreign, f"requests outside {self.origin}: {self.foreign}"


@contextmanager
def new_page(browser, url: str, viewport: dict[str, int] = VIEWPORT) -> Iterator[Page]:
    """A page of its own (another viewport, another server), recording like the ``page`` fixture."""
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        pg = context.new_page()
        pg.recorder = Recorder(pg, url)  # type: ignore[attr-defined]
        yield pg
    finally:
        context.close()


# ---- helpers -----------------------------------------------------------------------------------


def open_explorer(page: Page, url: str) -> None:
    page.goto(url + "/")
    wait_idle(page)
    page.wait_for_selector('[data-testid="cell-output-0-0-0-0"]')


def wait_idle(page: Page) -> None:
    """Until the debounced /api/explain request has been answered and drawn (or refused)."""
    page.wait_for_function("document.body.dataset.pending === '0'", timeout=TIMEOUT_MS)


def read_cells(page: Page, step: str) -> dict[tuple[int, ...], float]:
    """The drawn values of one step's grid, by index, from data-testid="cell-STEP-i-j-…"."""
    pairs = page.eval_on_selector_all(
        f'[data-testid^="cell-{step}-"]', "els => els.map(e => [e.dataset.testid, e.textContent])"
    )
    out = {}
    for testid, text in pairs:
        idx = tuple(int(p) for p in testid.removeprefix(f"cell-{step}-").split("-"))
        out[idx] = float(text.strip())
    return out


def assert_drawn(cells: dict[tuple[int, ...], float], expected: torch.Tensor, what: str) -> None:
    expected = expected.detach().double()
    want = set(itertools.product(*map(range, expected.shape)))
    assert set(cells) == want, f"{what}: drawn {sorted(cells)} vs shape {list(expected.shape)}"
    for idx, shown in cells.items():
        ref = expected[idx].item()
        assert abs(shown - ref) <= TOL, f"{what}{list(idx)}: drawn {shown} vs torch {ref:.6f}"


def seed_batch(seed: int = 0, shape: tuple[int, ...] = SEED_SHAPE) -> torch.Tensor:
    """The blog post's batch: torch.manual_seed(seed); torch.rand(shape) (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.rand(shape)


def torch_bn2d(gamma, beta, x: torch.Tensor | None = None) -> torch.Tensor:
    x = seed_batch() if x is None else x
    bn = torch.nn.BatchNorm2d(x.shape[1])
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gamma))
        bn.bias.copy_(torch.tensor(beta))
        return bn.train()(x)


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def set_value(page: Page, testid: str, value: str) -> None:
    page.fill(f'[data-testid="{testid}"]', value)


CALC = re.compile(
    r"= \((?P<x>-?[\d.]+) − \(?(?P<mu>-?[\d.]+)\)?\)/√\((?P<var>[\d.]+) \+ (?P<eps>[\de.+-]+)\)"
    r"·\(?(?P<g>-?[\d.e+-]+)\)? \+ \(?(?P<b>-?[\d.e+-]+)\)? = (?P<y>-?[\d.]+)$"
)
