"""``bnlab tour``: the whole source document, computed live, in the terminal and one HTML page."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from . import examples, html, text
from .lang import Say, check_lang

TITLE = "Batch normalization, understood and visualized"
TITLE_ZH = "批量归一化理解与可视化"
INTRO = Say(
    "A walk through the batch-normalization chapter of Dive into Deep Learning (PyTorch), after "
    "the blog post 《动手学深度学习Pytorch版》之批量归一化理解与可视化, whose pictures were lost. "
    "Every number on this page was computed by bnlab when the page was generated, and every "
    "computed step is checked against torch.nn.BatchNorm*d.",
    "跟着博文《动手学深度学习Pytorch版》之批量归一化理解与可视化（原文的图已经丢失），"
    "走一遍《动手学深度学习》（PyTorch 版）的批量归一化一章。本页的每个数都是 bnlab 在生成页面时"
    "现场算出来的，每一步计算都与 torch.nn.BatchNorm*d 对照检查过。",
)


@dataclass
class TourResult:
    index: Path
    figures: list[Path]
    sections: list[examples.Section]
    seconds: float


def build_sections() -> list[examples.Section]:
    """The source's sections in its order, then the summary and the exercises."""
    from .exercises import summary_section

    sections = [examples.build(name) for name in examples.TOUR_ORDER]
    return [*sections, summary_section(sections)]


def render_figures(sections: list[examples.Section], lang: str = "en") -> dict[str, bytes]:
    """Every section's figures as PNG bytes, keyed by figure key, labelled in ``lang``."""
    from . import figures

    images: dict[str, bytes] = {}
    with figures.language(lang):  # read when each figure is built, inside the factory
        for s in sections:
            for spec in s.figures:
                images[spec.key] = figures.render(spec.factory(), "png")
    return images


def run(out_dir: str | Path, console: Console | None = None, lang: str = "en") -> TourResult:
    """Compute every section, print the walkthrough, write ``out_dir/index.html`` and PNGs.

    ``lang`` is ``"en"`` or ``"zh"``: the same numbers, told in that language.
    """
    check_lang(lang)
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = build_sections()
    if console is not None:
        text.render_sections(sections, console, lang)
    images = render_figures(sections, lang)
    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    paths = []
    for key, png in images.items():
        p = fig_dir / f"{key}.png"
        p.write_bytes(png)
        paths.append(p)
    for section in sections:  # pages the sections link to, beside the tour
        for _, href, source in section.pages:
            target = out / href
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    index = out / "index.html"
    index.write_text(html.page(TITLE, TITLE_ZH, INTRO, sections, images, lang), encoding="utf-8")
    seconds = time.perf_counter() - t0
    if console is not None:
        bad = [c for s in sections for c in s.checks if not c.ok]
        passed = sum(len(s.checks) for s in sections) - len(bad)
        if lang == "zh":
            console.print(
                f"与 torch 对照的检查：通过 {passed} 项，失败 {len(bad)} 项；"
                f"{len(images)} 幅图；{seconds:.1f} 秒"
            )
            console.print(f"已写入 {index.resolve()}")
        else:
            console.print(
                f"{passed} checks against torch passed, {len(bad)} failed; "
                f"{len(images)} figures; {seconds:.1f} s"
            )
            console.print(f"wrote {index.resolve()}")
    return TourResult(index, paths, sections, seconds)
