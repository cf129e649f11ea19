"""The explorer page in a real browser (Playwright, sync API, the system's Chromium).

A live server (uvicorn in a thread, loopback, a free port) serves ``create_app(runs_dir)`` with
two tiny training runs this module writes itself.  Every test records the page's console
messages, page errors, failed requests, error responses and requests to any other origin, and
asserts there were none (the error test allows exactly its own 422 answers).  Screenshots at
1280×800 go to ``tests/web/artifacts/``.

Runs when ``chromium`` is on PATH (never downloads a browser); skipped, saying so, when it is not.
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

import pytest
import torch

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None and os.environ.get("CI") == "true":
    # CI installs Chromium (make test → system-test): there, a missing browser is a failure
    raise RuntimeError("CI=true but no `chromium` on PATH: the browser tests must run in CI")
if CHROMIUM is None:
    pytest.skip(
        "no `chromium` executable on PATH: the browser tests drive the system Chromium",
        allow_module_level=True,
    )

import uvicorn  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

import bnlab.nn  # noqa: E402
from bnlab.web.app import create_app  # noqa: E402

ARTIFACTS = Path(__file__).parent / "artifacts"
VIEWPORT = {"width": 1280, "height": 800}
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


def _write_run(folder: Path, name: str, bn: str | None, layers: list[str], spread: float) -> None:
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


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    _write_run(root / "with-bn", "with-bn", "bnlab", ["2", "6"], spread=0.2)
    _write_run(root / "no-bn", "no-bn", None, ["1", "4"], spread=3.0)
    return root


# ---- a live server and one browser -------------------------------------------------------------


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


@pytest.fixture(scope="module")
def base_url(runs_dir: Path) -> Iterator[str]:
    with live_server(runs_dir) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, timeout=30_000)
        try:
            yield b
        finally:
            b.close()


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


# ---- tests -------------------------------------------------------------------------------------


def test_loads_clean_and_draws_the_source_example(page: Page, base_url: str) -> None:
    open_explorer(page, base_url)
    assert page.title() == "bnlab — batch normalization explorer"
    # the controls open on the blog post's example
    assert page.input_value('[data-testid="layout"]') == "conv"
    sizes = [page.input_value(f'[data-testid="size-{d}"]') for d in "nchw"]
    assert sizes == ["2", "2", "2", "2"]
    assert page.input_value('[data-testid="seed"]') == "0"
    assert [float(page.input_value(f'[data-testid="gamma-{c}"]')) for c in (0, 1)] == [2, 5]
    assert [float(page.input_value(f'[data-testid="beta-{c}"]')) for c in (0, 1)] == [3, 8]
    assert float(page.input_value('[data-testid="eps"]')) == 1e-5
    assert page.is_checked('[data-testid="mode-train"]')
    assert page.input_value('[data-testid="norm"]') == "batch"

    x = seed_batch()
    assert_drawn(read_cells(page, "input"), x, "input")
    assert_drawn(read_cells(page, "output"), torch_bn2d(GAMMA, BETA, x), "output")
    assert_drawn(read_cells(page, "mean"), x.mean(dim=(0, 2, 3)), "mean")
    assert_drawn(read_cells(page, "var"), x.var(dim=(0, 2, 3), unbiased=False), "var")
    # every step, in order, with its formula
    order = page.eval_on_selector_all(
        "#steps > section.step", "els => els.map(e => e.dataset.testid)"
    )
    assert order == [
        "step-input",
        "step-mean",
        "step-x_minus_mean",
        "step-xhat",
        "step-output",
        "step-running_mean",
    ]
    assert "(1/m) Σ x" in page.inner_text('[data-testid="step-mean"]')
    assert "[1, 2, 1, 1]" in page.inner_text('[data-testid="step-mean"]')
    assert "null" not in page.inner_text("body")
    assert "undefined" not in page.inner_text("body")
    shot(page, "initial")
    page.recorder.assert_clean()


def test_gamma_and_beta_inputs_redraw_the_output(page: Page, base_url: str) -> None:
    open_explorer(page, base_url)
    for c in (0, 1):
        set_value(page, f"gamma-{c}", "1")
        set_value(page, f"beta-{c}", "0")
    wait_idle(page)
    x = seed_batch()
    assert_drawn(read_cells(page, "output"), torch_bn2d((1.0, 1.0), (0.0, 0.0), x), "γ=1, β=0")
    set_value(page, "gamma-1", "5")
    set_value(page, "beta-1", "8")
    wait_idle(page)
    assert_drawn(read_cells(page, "output"), torch_bn2d((1.0, 5.0), (0.0, 8.0), x), "γ₁=5, β₁=8")
    assert "(1, 5)" in page.inner_text('[data-testid="step-output"]')
    shot(page, "gamma-beta")
    page.recorder.assert_clean()


def test_a_bad_value_shows_its_message_and_keeps_the_picture(page: Page, base_url: str) -> None:
    open_explorer(page, base_url)
    before = read_cells(page, "output")
    for bad in ("0", "-1"):
        set_value(page, "eps", bad)
        wait_idle(page)
        error = page.locator('[data-testid="error"]')
        error.wait_for(state="visible")
        assert "eps" in error.inner_text()
        assert error.get_attribute("data-field") == "eps"
        assert "invalid" in (page.get_attribute('[data-testid="eps"]', "class") or "")
        # the message sits with the ε control, not somewhere else on the page
        near = page.evaluate(
            "() => document.querySelector('[data-testid=error]').previousElementSibling"
            ".contains(document.querySelector('[data-testid=eps]'))"
        )
        assert near
        assert read_cells(page, "output") == before  # the last good picture stays
        assert page.is_visible('[data-testid="status"]')
    shot(page, "error-eps")
    set_value(page, "eps", "1e-5")
    wait_idle(page)
    assert page.locator('[data-testid="error"]').count() == 0
    assert not page.locator('[data-testid="eps"].invalid').count()
    assert read_cells(page, "output") == before
    page.recorder.assert_clean(allow_status=422)


def test_feed_a_batch_moves_the_running_mean(page: Page, base_url: str) -> None:
    open_explorer(page, base_url)
    assert page.inner_text('[data-testid="running-mean-0"]') == "0.0000"
    bn = bnlab.nn.BatchNorm2d(2)  # what the server does: a fresh module, then one batch a step
    for step in (1, 2):
        page.click('[data-testid="feed"]')
        page.wait_for_function(
            f"document.querySelector('[data-testid=feed-step]').textContent === 'step {step}'"
        )
        g = torch.Generator().manual_seed(0 + (step - 1) + 1)  # seed + step + 1 (before this one)
        with torch.no_grad():
            bn(torch.rand(SEED_SHAPE, generator=g))
        for c in (0, 1):
            shown = float(page.inner_text(f'[data-testid="running-mean-{c}"]'))
            assert abs(shown - bn.running_mean[c].item()) <= TOL, (step, c, shown)
            shown_var = float(page.inner_text(f'[data-testid="running-var-{c}"]'))
            assert abs(shown_var - bn.running_var[c].item()) <= TOL, (step, c, shown_var)
    assert float(page.inner_text('[data-testid="running-mean-0"]')) > 0.05
    chart = page.locator('[data-testid="running-chart"]')
    assert chart.locator("path.line").count() == 2  # one line per channel
    assert chart.locator("line.guide").count() == 1  # the population mean, dashed
    assert "0.5" in (chart.text_content() or "")
    wait_idle(page)  # the explorer redraws with the new running statistics as "before"
    assert "0.0000 →" not in page.inner_text('[data-testid="step-running_mean"]')
    page.locator('[data-testid="feed-card"]').scroll_into_view_if_needed()
    shot(page, "feed")
    page.recorder.assert_clean()


CALC = re.compile(
    r"= \((?P<x>-?[\d.]+) − \(?(?P<mu>-?[\d.]+)\)?\)/√\((?P<var>[\d.]+) \+ (?P<eps>[\de.+-]+)\)"
    r"·\(?(?P<g>-?[\d.e+-]+)\)? \+ \(?(?P<b>-?[\d.e+-]+)\)? = (?P<y>-?[\d.]+)$"
)


def test_clicking_an_output_cell_shows_its_calculation(page: Page, base_url: str) -> None:
    open_explorer(page, base_url)
    x = seed_batch()
    y = torch_bn2d(GAMMA, BETA, x)
    page.click('[data-testid="cell-output-0-0-0-0"]')
    calc_y = page.inner_text('[data-testid="calc-y"]')
    assert calc_y.endswith(
        "y = (x − μ_c)/√(σ²_c + ε)·γ_c + β_c = (0.4963 − 0.4154)/√(0.0464 + 1e-05)·2 + 3 = 3.7500"
    )
    for n, c, h, w in [(1, 1, 0, 1), (0, 1, 1, 0)]:
        page.click(f'[data-testid="cell-output-{n}-{c}-{h}-{w}"]')
        text = page.inner_text('[data-testid="calc-y"]').strip()
        m = CALC.search(text)
        assert m, text
        ch = x[:, c]
        want = {
            "x": x[n, c, h, w].item(),
            "mu": ch.mean().item(),
            "var": ch.var(unbiased=False).item(),
            "eps": 1e-5,
            "g": GAMMA[c],
            "b": BETA[c],
            "y": y[n, c, h, w].item(),
        }
        for key, ref in want.items():
            assert abs(float(m[key]) - ref) <= TOL, (key, m[key], ref)
        calc = page.inner_text('[data-testid="calc"]')
        assert f"x = {x[n, c, h, w].item():.4f}" in calc
        assert f"all 8 cells of channel {c}" in calc
    shot(page, "calc")
    page.recorder.assert_clean()


def test_hover_outlines_where_the_statistics_come_from(page: Page, base_url: str) -> None:
    open_explorer(page, base_url)

    def outlined() -> set[str]:
        ids = page.eval_on_selector_all(
            '[data-testid^="cell-input-"].src', "els => els.map(e => e.dataset.testid)"
        )
        return {i.removeprefix("cell-input-") for i in ids}

    cells = [f"{n}-{c}-{h}-{w}" for n in (0, 1) for c in (0, 1) for h in (0, 1) for w in (0, 1)]
    expect = {
        "batch": {i for i in cells if i.split("-")[1] == "1"},  # channel 1, both samples
        "layer": {i for i in cells if i.split("-")[0] == "1"},  # sample 1, both channels
        "instance": {i for i in cells if i.startswith("1-1-")},  # sample 1's channel 1
    }
    for norm, want in expect.items():
        if norm != "batch":
            page.select_option('[data-testid="norm"]', norm)
            wait_idle(page)
        page.mouse.move(0, 0)
        page.hover('[data-testid="cell-output-1-1-0-1"]')
        assert outlined() == want, norm
        # the shaded frames: as many as there are statistics
        frames = page.locator('[data-testid="grid-input"] rect.frame').count()
        assert frames == {"batch": 2, "layer": 2, "instance": 4}[norm]
        if norm == "layer":
            shot(page, "hover-layer")
    page.recorder.assert_clean()


def test_eval_mode_and_fully_connected_layout(page: Page, base_url: str) -> None:
    open_explorer(page, base_url)
    page.check('[data-testid="mode-eval"]')
    set_value(page, "rmean-0", "0.25")
    set_value(page, "rvar-0", "0.5")
    set_value(page, "rmean-1", "0.75")
    set_value(page, "rvar-1", "2")
    wait_idle(page)
    x = seed_batch()
    bn = torch.nn.BatchNorm2d(2).eval()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(GAMMA))
        bn.bias.copy_(torch.tensor(BETA))
        bn.running_mean.copy_(torch.tensor([0.25, 0.75]))
        bn.running_var.copy_(torch.tensor([0.5, 2.0]))
        assert_drawn(read_cells(page, "output"), bn(x), "eval output")
    shot(page, "eval")

    page.check('[data-testid="mode-train"]')
    page.select_option('[data-testid="layout"]', "fc")
    set_value(page, "size-n", "4")
    set_value(page, "size-c", "3")
    wait_idle(page)
    xf = seed_batch(0, (4, 3))
    assert_drawn(read_cells(page, "input"), xf, "fc input")
    bn1 = torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        bn1.weight.copy_(torch.tensor([2.0, 5.0, 1.0]))  # a new feature starts at γ = 1, β = 0
        bn1.bias.copy_(torch.tensor([3.0, 8.0, 0.0]))
        assert_drawn(read_cells(page, "output"), bn1.train()(xf), "fc output")
    assert (
        page.get_attribute('[data-testid="norm"] option[value="instance"]', "disabled") is not None
    )
    shot(page, "fully-connected")
    page.recorder.assert_clean()


def test_typed_input_values_are_normalized(page: Page, base_url: str) -> None:
    open_explorer(page, base_url)
    page.click('[data-testid="edit-values"]')
    wait_idle(page)
    cell = page.locator('[data-testid="value-0-0-0-0"]')
    assert cell.input_value() == "0.4963"  # the seed's values, to edit
    cell.fill("1")
    wait_idle(page)
    focused = page.evaluate("() => document.activeElement.dataset.testid")
    assert focused == "value-0-0-0-0"  # redrawing does not steal the cell being typed in
    x = torch.tensor(read_cells_inputs(page)).reshape(SEED_SHAPE)
    assert x[0, 0, 0, 0].item() == 1.0
    assert_drawn(read_cells(page, "output"), torch_bn2d(GAMMA, BETA, x), "typed input")
    assert page.locator('[data-testid="feed-card"]').count() == 1
    assert "null" not in page.inner_text("#steps")
    shot(page, "edit-values")
    page.click('[data-testid="edit-values"]')  # back to torch.rand(seed)
    wait_idle(page)
    assert_drawn(read_cells(page, "input"), seed_batch(), "input after editing")
    page.recorder.assert_clean()


def read_cells_inputs(page: Page) -> list[float]:
    """The editable input cells' values, in row-major order."""
    return page.eval_on_selector_all(
        '[data-testid^="value-"]',
        "els => els.sort((a, b) => a.dataset.i - b.dataset.i).map(e => Number(e.value))",
    )


def test_training_view_draws_both_runs_bands(page: Page, base_url: str) -> None:
    page.goto(base_url + "/")
    wait_idle(page)
    page.click('[data-testid="tab-training"]')
    page.wait_for_selector('[data-testid="band-b-1"]')
    assert page.input_value('[data-testid="run-a"]') == "with-bn"
    assert page.input_value('[data-testid="run-b"]') == "no-bn"
    for run in "ab":
        for layer in (0, 1):
            band = page.locator(f'[data-testid="band-{run}-{layer}"]')
            assert band.evaluate("e => e.tagName") == "path"
            d = band.get_attribute("d") or ""
            # 7 records: the 85th percentile forward, the 15th back, closed
            assert d.startswith("M") and d.endswith("Z") and d.count("L") == 2 * 7 - 1, d
            assert page.locator(f'[data-testid="median-{run}-{layer}"]').count() == 1
    assert 'layer "2"' in (page.text_content('[data-testid="bands-a-0"]') or "")
    assert 'layer "4"' in (page.text_content('[data-testid="bands-b-1"]') or "")
    for i in (0, 1):
        assert page.locator(f'[data-testid="loss-line-{i}"]').count() == 1
    assert page.locator('[data-testid="chart-acc"] path.line').count() == 4  # train, test × 2
    page.select_option('[data-testid="run-b"]', "")
    assert page.locator('[data-testid^="band-b-"]').count() == 0
    assert page.locator('[data-testid^="band-a-"]').count() == 2
    page.select_option('[data-testid="run-b"]', "no-bn")
    page.wait_for_selector('[data-testid="band-b-0"]')
    shot(page, "training")
    page.recorder.assert_clean()


def test_training_view_says_when_there_are_no_runs(browser, tmp_path: Path) -> None:
    with live_server(tmp_path) as url:
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_MS)
        try:
            pg = context.new_page()
            rec = Recorder(pg, url)
            pg.goto(url + "/")
            wait_idle(pg)
            pg.click('[data-testid="tab-training"]')
            empty = pg.locator('[data-testid="no-runs"]')
            empty.wait_for(state="visible")
            assert "no runs found" in empty.inner_text()
            assert pg.locator('[data-testid^="band-"]').count() == 0
            shot(pg, "no-runs")
            rec.assert_clean()
        finally:
            context.close()
