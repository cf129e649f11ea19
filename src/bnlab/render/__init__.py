"""The one rendering layer: figure style and bytes (``style``), HTML helpers (``html``).

The tour (``bnlab.explain``), the experiments' compare page (``bnlab.experiments``) and the
inspector's report (``bnlab.inspect``) all draw and write with these, and none reaches into
another's modules: each feature sits on this layer.
"""

from __future__ import annotations

from .html import CSS, VIEWPORT, data_uri, esc, img
from .style import display_width, language, render, tr

__all__ = ["CSS", "VIEWPORT", "data_uri", "display_width", "esc", "img", "language", "render", "tr"]
