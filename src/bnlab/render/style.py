"""The figures' shared style: one colour per channel, fonts, sizes, and ``render`` to bytes.

Channels keep one colour everywhere (``PALETTE``): channel c is ``channel_color(c)`` in every
figure. Chinese glosses need the WenQuanYi Micro Hei font (``fonts-wqy-microhei``); without it
they are left out rather than drawn as empty boxes. A figure function decorated with ``_styled``
is built inside bnlab's rc settings, and ``render`` writes byte-for-byte deterministic SVG.

Language: a figure built inside ``with language("zh"):`` carries Chinese labels only (every label
goes through ``tr(en, zh)`` or ``_bi``); outside it, or without the CJK font, the English labels
with their Chinese glosses. The language is read when a figure is built, not when it is rendered.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, Literal, ParamSpec, TypeVar

import matplotlib
from matplotlib import font_manager
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure

from ..errors import BNValueError

# One colour per channel, shared by every figure and the web explorer: Okabe & Ito's colour-blind
# safe list (blue, orange, bluish green, reddish purple, sky blue, vermillion, yellow, black).
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)
# Values shaded on a scale centred at 0 (x − μ, x̂): ColorBrewer's RdBu, reversed so that below
# the mean is blue and above it red. Its two arms stay apart under protan-, deutan- and tritanopia
# (ColorBrewer marks it colour-blind safe), it is the usual reading of −/+ and its white middle
# makes 0 look like "nothing" and keeps black numbers legible on the cells near 0.
DIVERGING = "RdBu_r"
HIGHLIGHT = "#f2b134"  # the shaded normalization set in axes_figure
NEUTRAL = "#5f6b73"  # outlines that are not channels (rows in mean_dims_figure, whole tensors)
INK = "#1b1b1b"
MUTED = "#5a5a5a"
DECIMALS = 4  # every tensor value is drawn as f"{v:.4f}"
DPI = 120  # CSS pixels per inch: a figure W inches wide is shown W·DPI CSS pixels wide
PNG_SCALE = 2  # PNGs carry PNG_SCALE device pixels per CSS pixel (sharp on high-DPI screens)
PAGE_WIDTH = 1000  # CSS px: the tour's column; a wider figure is scaled down to it
MIN_TEXT_PX = 11.0  # no text smaller than this, in CSS px, as the page shows it
CONTRAST = 4.5  # WCAG AA: the least contrast of text against what it is drawn on
LATIN_FONT = "DejaVu Sans"
CJK_FONT = "WenQuanYi Micro Hei"
VALUE_SIZE = 9.0  # pt, numbers inside cells
LABEL_SIZE = 9.5
TITLE_SIZE = 12.5
MAX_CELLS = 4096  # larger tensors: slice them first
MAX_VALUE_CELLS = 300  # above this many cells, cells are shaded by value instead of printed

LANGS = ("en", "zh")  # every page and figure speaks one of these


def check_lang(lang: str) -> str:
    """``lang`` if bnlab speaks it, else a one-line BNValueError."""
    if lang not in LANGS:
        raise BNValueError(f"lang must be one of {', '.join(LANGS)} (got {lang!r})")
    return lang


P = ParamSpec("P")
R = TypeVar("R")


# --- style ------------------------------------------------------------------------------------


@functools.cache
def cjk_font_available() -> bool:
    """True when matplotlib can find the CJK font used for the Chinese glosses."""
    try:
        font_manager.findfont(
            font_manager.FontProperties(family=CJK_FONT), fallback_to_default=False
        )
    except ValueError:
        return False
    return True


def _rc() -> dict[str, Any]:
    family = [LATIN_FONT, CJK_FONT] if cjk_font_available() else [LATIN_FONT]
    return {
        "font.family": family,
        "font.size": 10,
        "mathtext.fontset": "dejavusans",
        "axes.unicode_minus": True,
        "svg.hashsalt": "bnlab",
        "svg.fonttype": "path",
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
    }


class _NoCJKBoldNotice(logging.Filter):
    """Drops matplotlib's notice that the CJK font has no bold face (it then uses regular)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        return not (
            msg.startswith("findfont: Failed to find font weight") and CJK_FONT in str(record.args)
        )


@contextlib.contextmanager
def _style() -> Iterator[None]:
    """bnlab's rc settings, and no bold-CJK notices, for the duration of the block."""
    log = logging.getLogger("matplotlib.font_manager")
    quiet = _NoCJKBoldNotice()
    log.addFilter(quiet)
    try:
        with matplotlib.rc_context(_rc()):
            yield
    finally:
        log.removeFilter(quiet)


def _styled(fn: Callable[P, R]) -> Callable[P, R]:
    """Build the figure inside bnlab's style (fonts are fixed when a text is created)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _style():
            return fn(*args, **kwargs)

    return wrapper


# --- language ----------------------------------------------------------------------------------

_LANG: ContextVar[str] = ContextVar("bnlab_figures_lang", default="en")


@contextlib.contextmanager
def language(lang: str) -> Iterator[None]:
    """Figures built inside the block are labelled in ``lang``: "en" (English with Chinese glosses,
    the default) or "zh" (Chinese only)."""
    token = _LANG.set(check_lang(lang))
    try:
        yield
    finally:
        _LANG.reset(token)


def figure_lang() -> str:
    """The labels' language now: "zh" inside ``language("zh")`` when the CJK font is installed."""
    return "zh" if _LANG.get() == "zh" and cjk_font_available() else "en"


def tr(en: str, zh: str) -> str:
    """A label: ``en`` in an English figure, ``zh`` in a Chinese one."""
    return zh if figure_lang() == "zh" else en


def _zh(text: str) -> str:
    """A Chinese gloss, or nothing when no CJK font is installed (never a row of empty boxes)."""
    return text if cjk_font_available() else ""


def _bi(en: str, zh: str, sep: str = " ") -> str:
    """English with its Chinese gloss beside it; in a Chinese figure the Chinese alone.

    Only for a gloss that says all the English says; otherwise ``tr(_bi(en, gloss), zh)``.
    """
    if figure_lang() == "zh":
        return zh
    z = _zh(zh)
    return f"{en}{sep}{z}" if z else en


def _mono() -> str | list[str]:
    """The code font; in a Chinese figure with the CJK font behind it for the Chinese words."""
    mono = "DejaVu Sans Mono"
    return [mono, CJK_FONT] if figure_lang() == "zh" else mono


def channel_color(c: int) -> str:
    """The colour of channel ``c`` in every bnlab figure."""
    return PALETTE[c % len(PALETTE)]


def _luminance(color: Any) -> float:
    """WCAG relative luminance of ``color`` (0 black … 1 white)."""

    def lin(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(v) for v in to_rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: Any, b: Any) -> float:
    """WCAG contrast ratio of two colours: 1 (the same) … 21 (black on white)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _darkened(color: str, target: float) -> str:
    """``color`` scaled towards black until it has ``target`` contrast against white."""
    rgb = to_rgb(color)
    k = 1.0
    while contrast(tuple(v * k for v in rgb), "white") < target and k > 0:
        k -= 0.02
    return to_hex(tuple(v * max(k, 0.0) for v in rgb))


@functools.cache
def channel_text_color(c: int) -> str:
    """Channel ``c``'s colour for text on white: its own hue, darkened to a 4.5:1 contrast.

    Okabe–Ito's orange, sky blue and yellow are too light to read as text on white.
    """
    return _darkened(channel_color(c), CONTRAST)


@functools.cache
def channel_edge_color(c: int) -> str:
    """Channel ``c``'s colour for outlines and lines: itself; yellow darkened to show on white."""
    color = channel_color(c)
    return color if contrast(color, "white") >= 1.8 else _darkened(color, 3.0)


def ink_on(face: Any) -> str:
    """Text colour for a cell of colour ``face``: ``INK``, or white on a dark face."""
    return INK if contrast(INK, face) >= contrast("white", face) else "white"


def diverging_limit(values: Any) -> float:
    """A round symmetric limit L ≥ max |v| for a scale centred at 0: 1, 2, 2.5 or 5 × 10^k."""
    top = float(max((abs(float(v)) for v in values), default=0.0))
    if not math.isfinite(top) or top <= 0:
        return 1.0
    k = 10 ** math.floor(math.log10(top))
    return next(m * k for m in (1, 2, 2.5, 5, 10) if m * k >= top * (1 - 1e-9))


def diverging_color(v: float, limit: float) -> tuple[float, float, float]:
    """The ``DIVERGING`` colour of ``v``: −limit (blue) through 0 (white) to +limit (red)."""
    t = 0.5 + 0.5 * max(-1.0, min(1.0, v / limit))
    return tuple(matplotlib.colormaps[DIVERGING](t)[:3])  # type: ignore[return-value]


def _tint(color: str, amount: float) -> tuple[float, float, float]:
    """``color`` mixed into white: 0 → white, 1 → the colour itself."""
    r, g, b = to_rgb(color)
    return (1 - amount + amount * r, 1 - amount + amount * g, 1 - amount + amount * b)


def format_value(v: float, decimals: int = DECIMALS) -> str:
    """How a tensor value is written inside a cell."""
    return f"{v:.{decimals}f}"


def _short(v: float) -> str:
    """A compact number: 4.5, 10, 0.4963 (for scalars like γ, β and mean_dims results)."""
    s = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _shape(dims: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(d)) for d in dims) + "]"


# --- bytes -------------------------------------------------------------------------------------


def render(fig: Figure, fmt: Literal["png", "svg"] = "png", scale: int = PNG_SCALE) -> bytes:
    """PNG or SVG bytes of ``fig``; the SVG is the same bytes on every run.

    A PNG has ``scale`` device pixels per CSS pixel (``DPI·scale`` dots per inch, recorded in its
    pHYs chunk), so it stays sharp on high-DPI screens. A page must show it at its CSS size,
    ``<img width="{display_width(png)}">`` (its pixel width / ``scale``), never at its pixel width:
    that would draw it ``scale`` times too large. SVG has no pixels; ``scale`` does not touch it.
    """
    if fmt not in ("png", "svg"):
        raise BNValueError(f"render: fmt must be 'png' or 'svg' (got {fmt!r})")
    if not (isinstance(scale, int) and 1 <= scale <= 4):
        raise BNValueError(f"render: scale must be 1, 2, 3 or 4 (got {scale!r})")
    metadata: dict[str, Any] = (
        {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
    )
    buf = io.BytesIO()
    with _style():
        fig.savefig(
            buf,
            format=fmt,
            dpi=DPI * scale if fmt == "png" else DPI,
            metadata=metadata,
            bbox_inches="tight",
            pad_inches=0.12,
            facecolor="white",
        )
    return buf.getvalue()


def _png_header(png: bytes) -> tuple[int, float | None]:
    """(pixel width, dots per inch from the pHYs chunk or None) of a PNG."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise BNValueError("display_width: not PNG bytes")
    width = int.from_bytes(png[16:20], "big")
    pos = 8
    while pos + 8 <= len(png):  # chunks: length, type, data, CRC; pHYs comes before IDAT
        length, kind = int.from_bytes(png[pos : pos + 4], "big"), png[pos + 4 : pos + 8]
        if kind == b"pHYs" and png[pos + 16] == 1:  # unit 1: pixels per metre
            return width, int.from_bytes(png[pos + 8 : pos + 12], "big") * 0.0254
        if kind in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return width, None


def display_width(png: bytes) -> int:
    """The CSS width in px to show ``render(fig, "png")`` at: its pixel width / its scale.

    Read from the PNG itself (its pHYs dots per inch against ``DPI``), so it is right for any
    ``scale``; a PNG without pHYs is taken to be at ``PNG_SCALE``.
    """
    width, dpi = _png_header(png)
    scale = dpi / DPI if dpi else PNG_SCALE
    return max(1, round(width / scale))
