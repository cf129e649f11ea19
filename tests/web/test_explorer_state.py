"""The explorer's state after a change: every picture, control and text follows the settings.

Each test changes one thing (the norm while editing, the shape with a cell pinned, the layout, a
reload) and checks that nothing still shows the old state.  The live server, the browser, the
console recorder and the helpers are test_browser's (see its docstring); screenshots go to
``tests/web/artifacts/``, at 1280×800 and, where the layout is touched, 390×844 too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from .harness import require_chromium

require_chromium()

from playwright.sync_api import Page  # noqa: E402

from .harness import (  # noqa: E402
    BETA,
    CALC,
    GAMMA,
    PHONE,
    TOL,
    VIEWPORT,
    assert_drawn,
    live_server,
    new_page,
    open_explorer,
    read_cells,
    seed_batch,
    set_value,
    shot,
    torch_bn2d,
    wait_idle,
)

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "results"
CELLS = [f"{n}-{c}-{h}-{w}" for n in (0, 1) for c in (0, 1) for h in (0, 1) for w in (0, 1)]
# a count of one written with a plural noun ("1 groups", "the 1 channels")
SINGULAR_AS_PLURAL = re.compile(r"\b1 (groups|channels|features|samples|values|cells)\b")


def explain_requests(page: Page) -> list[dict]:
    """The bodies of every /api/explain request the page sends from now on."""
    sent: list[dict] = []
    page.on(
        "request",
        lambda r: sent.append(r.post_data_json) if r.url.endswith("/api/explain") else None,
    )
    return sent


def ids_of(page: Page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.testid)")


def outlined(page: Page) -> set[str]:
    """The input cells outlined as the hovered cell's sources."""
    ids = ids_of(page, '[data-testid^="cell-input-"].src')
    return {i.removeprefix("cell-input-") for i in ids}


def inside_hot_frame(page: Page) -> set[str]:
    """The input cells whose centre lies inside the highlighted frame of the input grid."""
    ids = page.evaluate(
        """() => {
          const grid = document.querySelector('[data-testid=grid-input]');
          const hot = grid.querySelectorAll('rect.frame.hot');
          if (hot.length !== 1) return [`${hot.length} highlighted frames`];
          const f = hot[0].getBoundingClientRect();
          return [...grid.querySelectorAll('.cell')].filter((c) => {
            const r = c.querySelector('rect').getBoundingClientRect();
            const x = r.left + r.width / 2, y = r.top + r.height / 2;
            return x > f.left && x < f.right && y > f.top && y < f.bottom;
          }).map((c) => c.dataset.testid);
        }"""
    )
    return {i.removeprefix("cell-input-") for i in ids}


def drawer_open(page: Page) -> bool:
    return "open" in (page.get_attribute("#calc-card", "class") or "")


# ---- 1. the committed runs, wherever the server starts -----------------------------------------


def test_training_view_lists_the_committed_runs_from_any_folder(
    browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BNLAB_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)  # not the repository root: docs/results is not under ./
    want = {str(m.parent.relative_to(COMMITTED)) for m in COMMITTED.rglob("metrics.jsonl")}
    with live_server(None) as url, new_page(browser, url) as pg:
        pg.goto(url + "/")
        wait_idle(pg)
        pg.click('[data-testid="tab-training"]')
        pg.wait_for_selector('[data-testid="band-a-0"]')
        assert pg.is_hidden('[data-testid="no-runs"]')
        names = pg.eval_on_selector_all('[data-testid="run-a"] option', "e => e.map(o => o.value)")
        assert set(names) == want and {"lenet", "lenet-bn", "bn-paper-fig1/with-bn"} <= want
        assert "docs/results" in pg.inner_text("#runs-root")
        pg.select_option('[data-testid="run-a"]', "lenet-bn")
        pg.select_option('[data-testid="run-b"]', "lenet")
        assert pg.locator('[data-testid="loss-line-1"]').count() == 1
        assert "lenet-bn" in pg.inner_text('[data-testid="run-card-0"]')
        shot(pg, "training-committed")
        pg.set_viewport_size(PHONE)
        shot(pg, "training-committed-390")
        pg.recorder.assert_clean()


def test_reload_keeps_the_chosen_runs(page: Page, base_url: str) -> None:
    page.goto(base_url + "/")
    wait_idle(page)
    page.click('[data-testid="tab-training"]')
    page.wait_for_selector('[data-testid="band-b-1"]')
    page.select_option('[data-testid="run-a"]', "no-bn")
    page.select_option('[data-testid="run-b"]', "")
    page.evaluate("() => document.querySelector('#runs-body > *').dataset.old = '1'")
    page.click('[data-testid="runs-reload"]')
    page.wait_for_function("() => !document.querySelector('#runs-body [data-old]')")
    assert page.input_value('[data-testid="run-a"]') == "no-bn"
    assert page.input_value('[data-testid="run-b"]') == ""
    assert page.locator('[data-testid^="band-b-"]').count() == 0
    assert 'layer "1"' in (page.text_content('[data-testid="bands-a-0"]') or "")
    page.recorder.assert_clean()


# ---- 2. the input grid's frames follow the norm while editing ----------------------------------


def test_switching_the_norm_while_editing_redraws_the_input_frames(
    page: Page, base_url: str
) -> None:
    open_explorer(page, base_url)
    page.click('[data-testid="edit-values"]')
    wait_idle(page)
    expect = {
        "layer": ({i for i in CELLS if i.startswith("1-")}, 2),  # sample 1; a frame per sample
        "instance": ({i for i in CELLS if i.startswith("1-1-")}, 4),  # sample 1's channel 1
        "batch": ({i for i in CELLS if i.split("-")[1] == "1"}, 2),  # channel 1, both samples
    }
    for norm, (want, frames) in expect.items():
        page.select_option('[data-testid="norm"]', norm)
        wait_idle(page)
        assert page.locator('[data-testid="grid-input"] rect.frame').count() == frames, norm
        page.mouse.move(0, 0)
        page.hover('[data-testid="cell-output-1-1-0-1"]')
        assert outlined(page) == want, norm
        assert inside_hot_frame(page) == want, norm  # the highlighted frame holds those cells
        if norm == "layer":
            shot(page, "edit-values-layer")
    assert page.locator('[data-testid^="value-"]').count() == 16  # still the editable grid
    page.recorder.assert_clean()


# ---- 3. entering edit mode changes no number ---------------------------------------------------


def test_entering_edit_mode_changes_no_number(page: Page, base_url: str) -> None:
    sent = explain_requests(page)
    open_explorer(page, base_url)
    page.click('[data-testid="cell-output-1-1-1-1"]')
    drawn = ["mean", "var", "x_minus_mean", "xhat", "output"]
    before = {step: read_cells(page, step) for step in drawn}
    calc = page.inner_text('[data-testid="calc"]')
    page.click('[data-testid="edit-values"]')
    wait_idle(page)
    exact = seed_batch().flatten().tolist()  # float32 values, as the seed's trace holds them
    assert sent[-1]["values"] == exact  # sent unrounded
    assert {step: read_cells(page, step) for step in drawn} == before
    assert page.inner_text('[data-testid="calc"]') == calc
    shown = page.eval_on_selector_all(
        '[data-testid^="value-"]',
        "els => els.sort((a, b) => a.dataset.i - b.dataset.i).map(e => e.value)",
    )
    assert shown == [f"{v:.4f}" for v in exact]  # shown to 4 decimals
    set_value(page, "value-0-1-0-0", "0.25")  # flat index 4
    wait_idle(page)
    assert sent[-1]["values"] == [*exact[:4], 0.25, *exact[5:]]  # the others stay exact
    page.recorder.assert_clean()


def test_edit_values_right_after_a_change_takes_the_new_input(page: Page, base_url: str) -> None:
    sent = explain_requests(page)
    open_explorer(page, base_url)
    set_value(page, "seed", "7")
    page.click('[data-testid="edit-values"]')  # before the debounced redraw has come back
    wait_idle(page)
    assert sent[-1]["values"] == seed_batch(7).flatten().tolist()
    page.click('[data-testid="edit-values"]')  # back to the seed
    wait_idle(page)
    set_value(page, "size-n", "3")
    page.click('[data-testid="edit-values"]')
    wait_idle(page)
    assert sent[-1]["values"] == seed_batch(7, (3, 2, 2, 2)).flatten().tolist()
    assert page.locator('[data-testid^="value-"]').count() == 24
    page.recorder.assert_clean()


def test_a_bad_typed_value_marks_its_cell(page: Page, base_url: str) -> None:
    open_explorer(page, base_url)
    page.click('[data-testid="edit-values"]')
    wait_idle(page)
    set_value(page, "value-0-1-1-0", "abc")
    wait_idle(page)
    error = page.locator('[data-testid="error"]')
    error.wait_for(state="visible")
    assert error.get_attribute("data-field") == "values.6"
    assert ids_of(page, "#steps .cell-input.invalid") == ["value-0-1-1-0"]
    set_value(page, "value-0-1-1-0", "0.5")
    wait_idle(page)
    assert page.locator('[data-testid="error"]').count() == 0
    assert page.locator(".invalid").count() == 0
    page.recorder.assert_clean(allow_status=422)


# ---- 4. group norm: a G that is neither layer nor instance norm, kept valid --------------------


def test_group_norm_starts_as_neither_layer_nor_instance_norm(page: Page, base_url: str) -> None:
    open_explorer(page, base_url)
    page.select_option('[data-testid="norm"]', "group")
    wait_idle(page)
    # with C = 2 every G is layer (G = 1) or instance norm (G = 2): C goes to 4, G to 2
    assert page.input_value('[data-testid="size-c"]') == "4"
    assert page.input_value('[data-testid="groups"]') == "2"
    assert "C = 4 now (it was 2)" in page.inner_text('[data-testid="group-note"]')
    x = seed_batch(0, (2, 4, 2, 2))
    gamma, beta = torch.tensor([*GAMMA, 1.0, 1.0]), torch.tensor([*BETA, 0.0, 0.0])
    y = F.group_norm(x, 2, gamma, beta)
    assert_drawn(read_cells(page, "output"), y, "group norm, G = 2")
    for g in (1, 4):  # layer norm, instance norm: visibly other numbers
        assert (F.group_norm(x, g, gamma, beta) - y).abs().max() > 100 * TOL
    assert page.locator('[data-testid="grid-input"] rect.frame').count() == 4  # N·G
    assert set(read_cells(page, "mean")) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert "the 4 channels split into G = 2 groups" in page.inner_text('[data-testid="summary"]')

    def options() -> list[str]:
        return page.eval_on_selector_all(
            '[data-testid="groups"] option', "e => e.map(o => o.value)"
        )

    assert options() == ["1", "2", "4"]  # only divisors of C can be picked
    shot(page, "group-norm")
    set_value(page, "size-c", "6")
    wait_idle(page)
    assert page.is_hidden('[data-testid="group-note"]')  # the user's own C now
    assert options() == ["1", "2", "3", "6"] and page.input_value('[data-testid="groups"]') == "2"
    set_value(page, "size-c", "3")  # 2 no longer divides C
    wait_idle(page)
    assert options() == ["1", "3"] and page.input_value('[data-testid="groups"]') == "1"
    assert page.locator('[data-testid="error"]').count() == 0
    assert "the 3 channels split into G = 1 group;" in page.inner_text('[data-testid="summary"]')
    page.select_option('[data-testid="groups"]', "3")
    wait_idle(page)
    assert page.locator('[data-testid="grid-input"] rect.frame').count() == 6
    assert "G = 3 groups" in page.inner_text('[data-testid="summary"]')
    page.recorder.assert_clean()


def test_group_norm_of_few_features_starts_at_two_groups(page: Page, base_url: str) -> None:
    open_explorer(page, base_url)
    page.select_option('[data-testid="layout"]', "fc")
    wait_idle(page)
    page.select_option('[data-testid="norm"]', "group")
    wait_idle(page)
    assert page.input_value('[data-testid="size-c"]') == "4"
    assert page.input_value('[data-testid="groups"]') == "2"
    x = seed_batch(0, (2, 4))
    y = F.group_norm(x, 2, torch.tensor([*GAMMA, 1.0, 1.0]), torch.tensor([*BETA, 0.0, 0.0]))
    assert_drawn(read_cells(page, "output"), y, "group norm of (N, F), G = 2")
    assert "the 4 features split into G = 2 groups" in page.inner_text('[data-testid="summary"]')
    page.recorder.assert_clean()


SETTINGS = [
    ("group norm of 1 channel", "group", {"size-c": "1"}),
    ("layer norm of 1 value", "layer", {f"size-{d}": "1" for d in "nchw"}),
    ("instance norm of 1×1 maps", "instance", {"size-h": "1", "size-w": "1"}),
    ("batch norm of 1 feature", "batch", {"layout": "fc", "size-c": "1"}),
]


@pytest.mark.parametrize(("case", "norm", "settings"), SETTINGS, ids=[s[0] for s in SETTINGS])
def test_a_count_of_one_is_singular(
    page: Page, base_url: str, case: str, norm: str, settings: dict[str, str]
) -> None:
    open_explorer(page, base_url)
    if "layout" in settings:
        page.select_option('[data-testid="layout"]', settings["layout"])
    page.select_option('[data-testid="norm"]', norm)
    wait_idle(page)
    for testid, value in settings.items():
        if testid != "layout":
            set_value(page, testid, value)
    wait_idle(page)
    assert page.locator('[data-testid="error"]').count() == 0, case
    page.click('[data-testid^="cell-output-"] >> nth=0')  # the drawer's words too
    text = page.inner_text("body")
    assert not SINGULAR_AS_PLURAL.search(text), SINGULAR_AS_PLURAL.search(text)[0]
    page.recorder.assert_clean()


# ---- 5. the pinned cell across a shape change; the drawer hides nothing ------------------------


def test_a_shape_change_keeps_the_pinned_cell_or_closes_the_drawer(
    page: Page, base_url: str
) -> None:
    open_explorer(page, base_url)
    page.click('[data-testid="cell-output-1-1-1-1"]')
    set_value(page, "size-h", "3")  # (1, 1, 1, 1) still exists: the same cell, recomputed
    wait_idle(page)
    assert "[n=1, c=1, h=1, w=1]" in page.inner_text('[data-testid="calc-cell"]')
    x = seed_batch(0, (2, 2, 3, 2))
    y = torch_bn2d(GAMMA, BETA, x)
    m = CALC.search(page.inner_text('[data-testid="calc-y"]').strip())
    assert m, page.inner_text('[data-testid="calc-y"]')
    assert abs(float(m["x"]) - x[1, 1, 1, 1].item()) <= TOL
    assert abs(float(m["y"]) - y[1, 1, 1, 1].item()) <= TOL
    assert ids_of(page, '[data-testid="grid-output"] .picked') == ["cell-output-1-1-1-1"]
    shot(page, "pinned-after-shape-change")
    set_value(page, "size-w", "1")  # w = 1 is gone: the drawer closes
    wait_idle(page)
    assert not drawer_open(page)
    assert page.is_hidden("#calc-close")
    assert page.locator("#steps .picked").count() == 0
    page.click('[data-testid="cell-output-0-1-2-0"]')
    assert drawer_open(page)
    page.select_option('[data-testid="layout"]', "fc")  # another rank: no such cell
    wait_idle(page)
    assert not drawer_open(page)
    page.recorder.assert_clean()


@pytest.mark.parametrize("viewport", [VIEWPORT, PHONE], ids=["1280x800", "390x844"])
def test_the_open_drawer_leaves_the_last_content_visible(
    browser, base_url: str, viewport: dict[str, int]
) -> None:
    with new_page(browser, base_url, viewport) as pg:
        open_explorer(pg, base_url)
        pg.click('[data-testid="cell-output-1-1-1-1"]')
        assert drawer_open(pg)
        shot(pg, f"calc-{viewport['width']}")
        # scroll as far as the page goes, then look at its last line
        pg.evaluate(
            """() => {
              for (const e of [document.scrollingElement, document.querySelector('.work')])
                e.scrollTop = e.scrollHeight;
            }"""
        )
        got = pg.evaluate(
            """() => {
              let last = document.getElementById('steps').lastElementChild;
              while (last.lastElementChild && !(last instanceof SVGElement))
                last = last.lastElementChild;
              const r = last.getBoundingClientRect();
              const d = document.getElementById('calc-card').getBoundingClientRect();
              const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
              return {
                last: [r.top, r.bottom], drawer: [d.top, d.bottom], height: innerHeight,
                uncovered: last.contains(top), wide: document.scrollingElement.scrollWidth,
                width: innerWidth, text: last.textContent,
              };
            }"""
        )
        top, bottom = got["drawer"]
        assert top < got["height"] and bottom <= got["height"] + 1, got  # the drawer is in view
        assert bottom - top <= got["height"] / 2, got  # and leaves half the page
        assert got["last"][0] >= 0 and got["last"][1] <= top + 1, got  # the last line above it
        assert got["uncovered"], got
        assert got["wide"] <= got["width"] + 1, got  # nothing spills out sideways
        shot(pg, f"calc-end-{viewport['width']}")
        pg.recorder.assert_clean()


# ---- other state that must follow a change -----------------------------------------------------


def test_the_channel_table_follows_the_layout(page: Page, base_url: str) -> None:
    open_explorer(page, base_url)
    page.select_option('[data-testid="layout"]', "fc")
    wait_idle(page)
    assert page.inner_text("#chan-head th >> nth=0") == "feature"
    assert page.inner_text("#chan-body td.chan-name >> nth=1").strip() == "f = 1"
    assert [page.input_value(f'[data-testid="gamma-{c}"]') for c in (0, 1)] == ["2", "5"]
    page.select_option('[data-testid="layout"]', "conv")
    wait_idle(page)
    assert page.inner_text("#chan-head th >> nth=0") == "channel"
    assert page.inner_text("#chan-body td.chan-name >> nth=1").strip() == "c = 1"
    page.recorder.assert_clean()
