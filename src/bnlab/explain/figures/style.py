"""The figures' shared style: one colour per channel, fonts, sizes, and ``render`` to bytes.

Channels keep one colour everywhere (``PALETTE``): channel c is ``channel_color(c)`` in every
figure. Chinese glosses need the WenQuanYi Micro Hei font (``fonts-wqy-microhei``); without it
they are left out rather than drawn as empty boxes. A figure function decorated with ``_styled``
is built inside bnlab's rc settings, and ``render`` writes byte-for-byte deterministic SVG.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, ParamSpec, TypeVar

import matplotlib
from matplotlib import font_manager
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from ...errors import BNValueError

# One colour per channel, shared by every figure (tab10's first eight, colour-blind friendly order).
PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
)
HIGHLIGHT = "#f2b134"  # the shaded normalization set in axes_figure
NEUTRAL = "#5f6b73"  # outlines that are not channels (rows in mean_dims_figure, whole tensors)
INK = "#1b1b1b"
MUTED = "#5a5a5a"
DECIMALS = 4  # every tensor value is drawn as f"{v:.4f}"
DPI = 120
LATIN_FONT = "DejaVu Sans"
CJK_FONT = "WenQuanYi Micro Hei"
VALUE_SIZE = 9.0  # pt, numbers inside cells
LABEL_SIZE = 9.5
TITLE_SIZE = 12.5
MAX_CELLS = 4096  # larger tensors: slice them first
MAX_VALUE_CELLS = 300  # above this many cells, cells are shaded by value instead of printed

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


def _zh(text: str) -> str:
    """A Chinese gloss, or nothing when no CJK font is installed (never a row of empty boxes)."""
    return text if cjk_font_available() else ""


def _bi(en: str, zh: str, sep: str = " ") -> str:
    """English with its Chinese gloss beside it."""
    z = _zh(zh)
    return f"{en}{sep}{z}" if z else en


def channel_color(c: int) -> str:
    """The colour of channel ``c`` in every bnlab figure."""
    return PALETTE[c % len(PALETTE)]


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


def render(fig: Figure, fmt: Literal["png", "svg"] = "png") -> bytes:
    """PNG (at ``DPI``) or SVG bytes of ``fig``; the SVG is the same bytes on every run."""
    if fmt not in ("png", "svg"):
        raise BNValueError(f"render: fmt must be 'png' or 'svg' (got {fmt!r})")
    metadata: dict[str, Any] = (
        {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
    )
    buf = io.BytesIO()
    with _style():
        fig.savefig(
            buf,
            format=fmt,
            dpi=DPI,
            metadata=metadata,
            bbox_inches="tight",
            pad_inches=0.12,
            facecolor="white",
        )
    return buf.getvalue()
