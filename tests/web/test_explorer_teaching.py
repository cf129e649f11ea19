"""The explorer's teaching aids: the stepper, batch dependence, the feed chart, checks, colours.

Stepping (button, ←/→) changes the caption and the highlighted cells; cells are reached with Tab
and pinned with Enter; "change sample n = 1" moves sample 0's outputs in train mode and none in
eval mode; the feed chart draws the running variance beside the mean with labelled population
lines; every number is checked in the page before a request; channels take the Okabe–Ito
colours.  The server, browser and recorder are test_browser's (see its docstring); screenshots go
to ``tests/web/artifacts/``.
"""

from __future__ import annotations

import pytest
import torch

from .harness import require_chromium

require_chromium()

from playwright.sync_api import Page  # noqa: E402

from .harness import (  # noqa: E402
    BETA,
    GAMMA,
    TOL,
    new_page,
    open_explorer,
    read_cells,
    seed_batch,
    set_value,
    shot,
    wait_idle,
)

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


def marked(page: Page, cls: str) -> set[str]:
    return set(
        page.eval_on_selector_all(f"#steps .cell.{cls}", "els => els.map(e => e.dataset.testid)")
    )


def caption(page: Page) -> str:
    return page.inner_text('[data-testid="step-caption"]')


# ---- the stepper -------------------------------------------------------------------------------


def test_stepping_changes_the_caption_and_the_highlighted_cells(page: Page, base_url: str) -> None:
    open_explorer(page, base_url)
    assert page.is_hidden('[data-testid="step-caption"]')
    page.click('[data-testid="step-toggle"]')
    x = seed_batch()
    channel0 = {f"cell-input-{n}-0-{h}-{w}" for n in (0, 1) for h in (0, 1) for w in (0, 1)}
    seen = []
    for k in range(1, 6):
        page.wait_for_function(f"location.search.includes('step={k}')")
        seen.append(caption(page))
        assert page.inner_text('[data-testid="step-count"]') == f"step {k} of 5"
        if k == 1:
            assert marked(page, "step-hl") == channel0  # channel 0's cells flow into μ₀
            assert marked(page, "step-target") == {"cell-mean-0"}
            assert f"{x[:, 0].mean().item():.4f}" in seen[-1]
            shot(page, "step-1")
        if k == 2:
            assert marked(page, "step-target") == {"cell-var-0"}
            assert f"{x[:, 0].var(unbiased=False).item():.4f}" in seen[-1]
        if k == 3:
            assert {"cell-mean-0", "cell-mean-1", "cell-var-0"} <= marked(page, "step-hl")
            assert len(marked(page, "step-target")) == 16  # back over the whole batch
        if k == 5:
            assert len(marked(page, "step-target")) == 16
            assert {i for i in marked(page, "step-target") if i.startswith("cell-output-")}
            assert "3.7500" in seen[-1]  # y of cell (0, 0, 0, 0)
        if k < 5:
            page.click('[data-testid="step-next"]')
    assert len(set(seen)) == 5  # a sentence of its own for each step
    assert page.is_disabled('[data-testid="step-next"]')
    page.click('[data-testid="step-prev"]')
    page.wait_for_function("location.search.includes('step=4')")
    assert caption(page) == seen[3]
    # the keys, outside any field
    page.locator("#summary").click()
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("location.search.includes('step=3')")
    assert caption(page) == seen[2]
    page.keyboard.press("ArrowRight")
    page.wait_for_function("location.search.includes('step=4')")
    assert caption(page) == seen[3]
    page.click('[data-testid="step-toggle"]')
    assert page.is_hidden('[data-testid="step-caption"]') and "step=" not in page.url
    assert not marked(page, "step-hl") and not marked(page, "step-target")
    page.recorder.assert_clean()


def test_cells_are_reached_with_tab_and_pinned_with_enter(page: Page, base_url: str) -> None:
    open_explorer(page, base_url)
    cell = page.locator('[data-testid="cell-output-1-1-0-1"]')
    assert cell.get_attribute("tabindex") == "0"
    page.locator('[data-testid="cell-xhat-1-1-1-1"]').focus()
    for _ in range(20):  # Tab walks on into the output grid
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.testid") == "cell-output-1-1-0-1":
            break
    assert page.evaluate("document.activeElement.dataset.testid") == "cell-output-1-1-0-1"
    ring = page.evaluate(
        "() => getComputedStyle(document.activeElement.querySelector('rect')).strokeWidth"
    )
    assert ring == "3.5px"  # the visible focus ring
    page.keyboard.press("Enter")
    assert "open" in (page.get_attribute("#calc-card", "class") or "")
    assert "[n=1, c=1, h=0, w=1]" in page.inner_text('[data-testid="calc-cell"]')
    assert "pin=1,1,0,1" in page.url
    shot(page, "keyboard-focus")
    page.recorder.assert_clean()


def test_reduced_motion_draws_no_moving_dots(browser, base_url: str) -> None:
    with new_page(browser, base_url) as pg:
        pg.emulate_media(reduced_motion="reduce")
        pg.goto(base_url + "/")
        wait_idle(pg)
        pg.click('[data-testid="step-toggle"]')
        assert pg.locator(".flow-dot").count() == 0
        assert marked(pg, "step-target") == {"cell-mean-0"}  # the highlight, without motion
        pg.recorder.assert_clean()


# ---- batch dependence --------------------------------------------------------------------------


def sample0(cells: dict) -> dict:
    return {i: v for i, v in cells.items() if i[0] == 0}


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_changing_sample_1_moves_sample_0_in_train_mode_only(
    page: Page, base_url: str, mode: str
) -> None:
    open_explorer(page, base_url)
    page.check(f'[data-testid="mode-{mode}"]')
    wait_idle(page)
    before = read_cells(page, "output")
    inputs = read_cells(page, "input")
    page.check('[data-testid="perturb"]')
    wait_idle(page)
    after = read_cells(page, "output")
    changed = read_cells(page, "input")
    assert sample0(changed) == sample0(inputs)  # sample 0's own values stay
    assert all(abs(changed[i] - inputs[i] - 1) <= TOL for i in changed if i[0] == 1)
    moved = {i for i in sample0(after) if abs(after[i] - before[i]) > TOL}
    note = page.inner_text('[data-testid="perturb-note"]')
    if mode == "train":
        assert moved, "in train mode some y of sample 0 change"
        x = seed_batch()
        x[1] += 1
        bn = torch.nn.BatchNorm2d(2)
        with torch.no_grad():
            bn.weight.copy_(torch.tensor(GAMMA))
            bn.bias.copy_(torch.tensor(BETA))
            y = bn.train()(x)
        for i, v in after.items():
            assert abs(v - y[i].item()) <= TOL, (i, v, y[i].item())
        assert "train mode" in note and f"{len(moved)} values" in note
        assert {f"cell-output-{'-'.join(map(str, i))}" for i in moved} == marked(page, "moved")
    else:
        assert not moved, f"in eval mode no y of sample 0 changes: {moved}"
        assert "eval mode" in note and "none" in note
    page.click('[data-testid="lang"]')
    page.wait_for_function("document.documentElement.lang === 'zh-CN'")
    zh = page.inner_text('[data-testid="perturb-note"]')
    assert ("训练模式" if mode == "train" else "预测模式") in zh
    shot(page, f"perturb-{mode}")
    page.recorder.assert_clean()


# ---- the feed chart ----------------------------------------------------------------------------


def test_the_feed_chart_draws_the_variance_with_labelled_population_lines(
    page: Page, base_url: str
) -> None:
    open_explorer(page, base_url)
    page.click('[data-testid="feed-10"]')
    page.wait_for_function(
        "document.querySelector('[data-testid=feed-step]').textContent === 'step 10'"
    )
    for testid, label in [("running-chart", "0.5"), ("running-var-chart", "1/12")]:
        chart = page.locator(f'[data-testid="{testid}"]')
        assert chart.locator("path.line").count() == 2
        assert chart.locator("line.guide").count() == 1
        assert label in (chart.text_content() or "")
        box = page.evaluate(
            """(id) => {
              const svg = document.querySelector(`[data-testid=${id}]`);
              const r = (e) => e.getBoundingClientRect();
              const label = r(svg.querySelector('.guide-label'));
              const data = [...svg.querySelectorAll('path.line, circle')].map(r);
              return {
                label: [label.left, label.right],
                data: Math.max(...data.map((d) => d.right)),
                svg: r(svg).right,
              };
            }""",
            testid,
        )
        # the label sits right of every data point, inside the chart
        assert box["label"][0] > box["data"] and box["label"][1] <= box["svg"] + 1, box
    mean = page.locator('[data-testid="running-chart"]').bounding_box()
    var = page.locator('[data-testid="running-var-chart"]').bounding_box()
    assert mean and var and abs(mean["y"] - var["y"]) < 1  # side by side
    page.locator('[data-testid="feed-card"]').scroll_into_view_if_needed()
    shot(page, "feed-variance")
    page.recorder.assert_clean()


# ---- checks in the page ------------------------------------------------------------------------

INVALID = [
    ("eps", "eps", "-1", "eps"),
    ("gamma-1", "gamma.1", "abc", "γ₁"),
    ("beta-0", "beta.0", "1e999", "β₀"),
    ("size-h", "shape.2", "0", "H"),
    ("size-n", "shape.0", "2.5", "N"),
    ("seed", "seed", "-3", "seed"),
    ("momentum", "momentum", "2", "momentum"),
]


@pytest.mark.parametrize(("testid", "field", "bad", "named"), INVALID, ids=[i[1] for i in INVALID])
def test_a_bad_number_is_caught_in_the_page_before_any_request(
    page: Page, base_url: str, testid: str, field: str, bad: str, named: str
) -> None:
    open_explorer(page, base_url)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/api/" in r.url else None)
    set_value(page, testid, bad)
    wait_idle(page)
    error = page.locator('[data-testid="error"]')
    error.wait_for(state="visible")
    assert error.get_attribute("data-field") == field
    assert named in error.inner_text() and bad in error.inner_text()
    assert page.locator(f'[data-testid="{testid}"].invalid').count() == 1
    near = page.evaluate(
        "(id) => document.querySelector('[data-testid=error]').previousElementSibling"
        ".contains(document.querySelector(`[data-testid=${id}]`))",
        testid,
    )
    assert near, "the message sits next to its field"
    assert not sent, f"no request for a bad number: {sent}"
    page.recorder.assert_clean()


def test_groups_that_do_not_divide_c_are_caught_and_layer_norm_says_per_channel(
    page: Page, base_url: str
) -> None:
    open_explorer(page, base_url)
    page.select_option('[data-testid="norm"]', "layer")
    wait_idle(page)
    hint = page.inner_text('[data-testid="chan-hint"]')
    assert "torch.nn.LayerNorm" in hint and "per element" in hint and "(C, H, W)" in hint
    assert "per channel" in hint
    page.select_option('[data-testid="norm"]', "group")
    wait_idle(page)
    page.evaluate(
        "() => { const s = document.querySelector('[data-testid=groups]');"
        " s.append(new Option('3', '3')); s.value = '3';"
        " s.dispatchEvent(new Event('change')); }"
    )
    wait_idle(page)
    error = page.locator('[data-testid="error"]')
    assert error.get_attribute("data-field") == "groups"
    assert "divide" in error.inner_text()
    page.recorder.assert_clean()


# ---- colours -----------------------------------------------------------------------------------


def test_channels_take_the_okabe_ito_colours(browser, base_url: str) -> None:
    with new_page(browser, base_url) as pg:
        pg.goto(base_url + "/?shape=2,8,1,1&gamma=1,1,1,1,1,1,1,1&beta=0,0,0,0,0,0,0,0")
        wait_idle(pg)
        swatches = pg.eval_on_selector_all(
            "#chan-body .swatch", "els => els.map(e => getComputedStyle(e).backgroundColor)"
        )

        def rgb(hex_: str) -> str:
            r, g, b = (int(hex_[i : i + 2], 16) for i in (1, 3, 5))
            return f"rgb({r}, {g}, {b})"

        assert swatches == [rgb(c) for c in OKABE_ITO]
        heads = pg.eval_on_selector_all(
            '[data-testid="grid-input"] text.head', "els => els.map(e => e.getAttribute('fill'))"
        )
        assert heads == OKABE_ITO
        shot(pg, "okabe-ito")
        pg.recorder.assert_clean()
