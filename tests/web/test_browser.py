"""The explorer page in a real browser (Playwright, sync API, the system's Chromium).

A live server (uvicorn in a thread, loopback, a free port) serves ``create_app(runs_dir)`` with
two tiny training runs the fixtures write themselves (harness.py, conftest.py).  Every test
records the page's console messages, page errors, failed requests, error responses and requests
to any other origin, and asserts there were none (the error test allows exactly its own 422
answers).  Screenshots at 1280×800 go to ``tests/web/artifacts/``.

Runs when ``chromium`` is on PATH (never downloads a browser); skipped, saying so, when it is not.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .harness import require_chromium

require_chromium()

from playwright.sync_api import Page  # noqa: E402

import bnlab.nn  # noqa: E402

from .harness import (  # noqa: E402
    BETA,
    CALC,
    GAMMA,
    SEED_SHAPE,
    TIMEOUT_MS,
    TOL,
    VIEWPORT,
    Recorder,
    assert_drawn,
    live_server,
    open_explorer,
    read_cells,
    seed_batch,
    set_value,
    shot,
    torch_bn2d,
    wait_idle,
)

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
    assert read_cells_inputs(page)[0] == 1.0
    x = seed_batch()
    x[0, 0, 0, 0] = 1.0  # the other values stay the seed's, unrounded (shown to 4 decimals)
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
