"""HTML helpers every page shares: the stylesheet, escaping, inlined figures.

The tour, the experiments' compare page and the inspector's report are each one self-contained
page (no request of any kind: styles inline, figures as ``data:`` URIs, no scripts) built on
these.
"""

from __future__ import annotations

import base64
import html

from .style import display_width

__all__ = ["CSS", "VIEWPORT", "data_uri", "esc", "img"]

CSS = """
body { font-family: "Noto Sans", "DejaVu Sans", "WenQuanYi Micro Hei", sans-serif;
       max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #1d232b; line-height: 1.5; }
h1 { font-size: 1.8em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #d8dee6; padding-bottom: 0.2em; margin-top: 2em; }
h2 .zh, h1 .zh { color: #5b6570; font-weight: normal; margin-left: 0.6em; }
pre { background: #f4f6f8; padding: 0.7em 1em; border-radius: 4px; overflow-x: auto; }
pre.printed { background: #fbfbf2; }
table.bn { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em;
           display: block; max-width: 100%; overflow-x: auto; }
table.bn th, table.bn td { border: 1px solid #d0d6dd; padding: 0.2em 0.6em; text-align: right; }
table.bn th { background: #eef1f4; white-space: nowrap; }
table.bn td.l, table.bn th.l { text-align: left; }
table.bn code { white-space: nowrap; }
.check { font-family: monospace; margin: 0.15em 0; }
.check.ok::before { content: "✓ "; color: #1a7f37; font-weight: bold; }
.check.bad::before { content: "✗ "; color: #cf222e; font-weight: bold; }
.note { color: #33404d; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e7eb; }
figcaption { color: #5b6570; font-size: 0.9em; }
nav ol { columns: 2; }
.check { overflow-wrap: anywhere; }
@media (max-width: 600px) { nav ol { columns: 1; } body { margin: 1em auto; } }
/* on a phone a figure keeps its size (its numbers stay >= 11 px) and scrolls inside its box */
@media (max-width: 600px) { figure { overflow-x: auto; } figure img { max-width: none; } }
.same { color: #1a7f37; }
details { margin: 0.3em 0; }
summary { cursor: pointer; color: #33404d; }
""".strip()


# phones show the page at their own width, and wide tables scroll inside their box
VIEWPORT = "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def data_uri(png: bytes) -> str:
    """A PNG inlined as a ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def img(png: bytes, alt: str) -> str:
    """An inlined figure at its CSS size: the PNG has 2 device pixels per CSS pixel, so that it
    is sharp on high-DPI screens; ``max-width: 100%`` still shrinks it to a narrow column."""

    return f"<img alt='{esc(alt)}' width='{display_width(png)}' src='{data_uri(png)}'>"
