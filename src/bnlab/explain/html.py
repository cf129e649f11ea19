"""HTML renderer: a trace fragment for Jupyter, and one self-contained page for the tour.

Self-contained means no request of any kind: styles inline, figures as ``data:`` URIs, no
scripts, fonts from the reader's system.  Output is deterministic for the same inputs.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping

from .examples import Check, Section
from .trace import Trace

CSS = """
body { font-family: "Noto Sans", "DejaVu Sans", "WenQuanYi Micro Hei", sans-serif;
       max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #1d232b; line-height: 1.5; }
h1 { font-size: 1.8em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #d8dee6; padding-bottom: 0.2em; margin-top: 2em; }
h2 .zh, h1 .zh { color: #5b6570; font-weight: normal; margin-left: 0.6em; }
pre { background: #f4f6f8; padding: 0.7em 1em; border-radius: 4px; overflow-x: auto; }
pre.printed { background: #fbfbf2; }
table.bn { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
table.bn th, table.bn td { border: 1px solid #d0d6dd; padding: 0.2em 0.6em; text-align: right; }
table.bn th { background: #eef1f4; }
table.bn td.l, table.bn th.l { text-align: left; }
table.bn code { white-space: nowrap; }
.check { font-family: monospace; margin: 0.15em 0; }
.check.ok::before { content: "✓ "; color: #1a7f37; font-weight: bold; }
.check.bad::before { content: "✗ "; color: #cf222e; font-weight: bold; }
.note { color: #33404d; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #e3e7eb; }
figcaption { color: #5b6570; font-size: 0.9em; }
nav ol { columns: 2; }
.same { color: #1a7f37; }
""".strip()


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def data_uri(png: bytes) -> str:
    """A PNG inlined as a ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _n(v: float) -> str:
    return f"{v:.6f}"


def trace_fragment(trace: Trace) -> str:
    """Per-channel statistics, the steps and every element, as HTML tables."""
    x = trace.input
    c_count = trace.channels
    m = x.numel() // max(c_count, 1)
    mode = "training (batch statistics)" if trace.training else "eval (running statistics)"
    parts = [
        f"<p>batch norm in {esc(mode)}, ε = {trace.eps:g}, input "
        f"<code>torch.Size({esc(list(x.shape))})</code></p>"
    ]
    rows = "".join(
        f"<tr><td>{c}</td><td>{m}</td><td>{_n(trace['mean'].value[c])}</td>"
        f"<td>{_n(trace['var'].value[c])}</td><td>{trace.gamma[c]:g}</td>"
        f"<td>{trace.beta[c]:g}</td></tr>"
        for c in range(c_count)
    )
    parts.append(
        "<table class='bn'><tr><th>c</th><th>m</th><th>μ</th><th>σ²</th>"
        f"<th>γ</th><th>β</th></tr>{rows}</table>"
    )
    keep = trace.keepdim_shape
    steps = "".join(
        f"<tr><td>{i}</td><td class='l'>{esc(s.title)}</td><td class='l'>{esc(s.formula)}</td>"
        f"<td class='l'><code>torch.Size({esc(keep if s.reduced_axes else list(s.shape))})"
        f"</code></td><td class='l'>{esc(list(s.reduced_axes)) if s.reduced_axes else ''}</td></tr>"
        for i, s in enumerate(trace.steps, 1)
    )
    parts.append(
        "<table class='bn'><tr><th>#</th><th class='l'>step</th><th class='l'>formula"
        "</th><th class='l'>shape</th><th class='l'>reduced dims</th></tr>"
        f"{steps}</table>"
    )
    if x.numel() <= 256:
        xc, xh, y = trace["x_minus_mean"].value, trace["xhat"].value, trace.output
        body = []
        for c in range(c_count):
            for i, (a, b, d, e) in enumerate(
                zip(
                    x[:, c].reshape(-1),
                    xc[:, c].reshape(-1),
                    xh[:, c].reshape(-1),
                    y[:, c].reshape(-1),
                    strict=True,
                )
            ):
                idx = ", ".join(str(v) for v in trace.channel_index(c, i))
                body.append(
                    f"<tr><td>{c}</td><td>({idx})</td><td>{_n(a)}</td><td>{_n(b)}</td>"
                    f"<td>{_n(d)}</td><td>{_n(e)}</td></tr>"
                )
        parts.append(
            "<table class='bn'><tr><th>c</th><th>index</th><th>x</th><th>x − μ</th>"
            f"<th>x̂</th><th>y = γ·x̂ + β</th></tr>{''.join(body)}</table>"
        )
    if "running_mean" in trace:
        rm, rv = trace["running_mean"].value, trace["running_var"].value
        run = "".join(
            f"<tr><td>{c}</td><td>{_n(rm[c])}</td><td>{_n(rv[c])}</td></tr>" for c in range(c_count)
        )
        parts.append(
            f"<table class='bn'><tr><th>c</th><th>running_mean</th>"
            f"<th>running_var</th></tr>{run}</table>"
            f"<p>running statistics after this step (momentum {trace.momentum:g})</p>"
        )
    return "<div class='bnlab-trace'>" + "\n".join(parts) + "</div>"


def section_html(section: Section, images: Mapping[str, bytes]) -> str:
    out = [
        f"<section id='{esc(section.key)}'>",
        f"<h2>{esc(section.title)}<span class='zh' lang='zh'>{esc(section.title_zh)}</span></h2>",
        f"<p>{esc(section.intro)}</p>",
    ]
    if section.code:
        out.append(f"<pre><code>{esc(section.code)}</code></pre>")
    if section.printed:
        label = "prints (computed now)" if section.code else ""
        if label:
            out.append(f"<p>{label}:</p>")
        out.append(f"<pre class='printed'>{esc(chr(10).join(section.printed))}</pre>")
        if section.source_printed:
            same = section.matches_source
            out.append(
                "<p class='same'>identical to what the source printed</p>"
                if same
                else f"<p>the source printed:</p><pre>{esc(chr(10).join(section.source_printed))}"
                "</pre>"
            )
    for name, trace in section.traces.items() if section.show_traces else ():
        if trace.input.numel() <= 64:
            out.append(f"<h3>trace: {esc(name)}</h3>{trace_fragment(trace)}")
    for fig in section.figures:
        if fig.key in images:
            out.append(
                f"<figure><img alt='{esc(fig.caption)}' src='{data_uri(images[fig.key])}'>"
                f"<figcaption>{esc(fig.caption)}</figcaption></figure>"
            )
    out.extend(check_lines(section.checks))
    for note in section.notes:
        out.append(f"<p class='note'>{esc(note)}</p>")
    out.append("</section>")
    return "\n".join(out)


def page(
    title: str, title_zh: str, intro: str, sections: Iterable[Section], images: Mapping[str, bytes]
) -> str:
    """One self-contained HTML page walking through ``sections`` in order."""
    sections = list(sections)
    nav = "".join(
        f"<li><a href='#{esc(s.key)}'>{esc(s.title)}</a> "
        f"<span lang='zh'>{esc(s.title_zh)}</span></li>"
        for s in sections
    )
    body = "\n".join(section_html(s, images) for s in sections)
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{esc(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n"
        f"<h1>{esc(title)}<span class='zh' lang='zh'>{esc(title_zh)}</span></h1>\n"
        f"<p>{esc(intro)}</p>\n<nav><ol>{nav}</ol></nav>\n{body}\n</body>\n</html>\n"
    )


def check_lines(checks: Iterable[Check]) -> list[str]:
    """One paragraph per check against torch, marked ✓ or ✗ by the stylesheet."""
    return [f"<p class='check {'ok' if c.ok else 'bad'}'>{esc(c.line())}</p>" for c in checks]


def trace_page(
    trace: Trace,
    images: Mapping[str, bytes],
    captions: Mapping[str, str],
    checks: Iterable[Check] = (),
) -> str:
    """``bnlab explain --format html``: a trace, its checks, tables and figures, self-contained."""
    figs = "".join(
        f"<figure><img alt='{esc(captions[k])}' src='{data_uri(v)}'>"
        f"<figcaption>{esc(captions[k])}</figcaption></figure>"
        for k, v in images.items()
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>bnlab explain</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n"
        f"<h1>Batch normalization, step by step</h1>\n{trace_fragment(trace)}\n"
        f"{''.join(check_lines(checks))}\n{figs}\n"
        "</body>\n</html>\n"
    )
