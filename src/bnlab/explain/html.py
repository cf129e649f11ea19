"""HTML renderer: a trace fragment for Jupyter, and one self-contained page for the tour.

Self-contained means no request of any kind: styles inline, figures as ``data:`` URIs, no
scripts, fonts from the reader's system.  Output is deterministic for the same inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..render.html import CSS, VIEWPORT, esc, img
from .examples import Check, Section
from .lang import caption, say, step_title
from .trace import Trace


def _n(v: float) -> str:
    return f"{v:.6f}"


def trace_fragment(trace: Trace, lang: str = "en", collapsible: bool = False) -> str:
    """Per-channel statistics, the steps and every element, as HTML tables.

    ``collapsible`` puts each table in a ``<details>`` (closed): the tour shows its pictures
    first and the numbers on request.
    """
    x = trace.input
    c_count = trace.channels
    m = x.numel() // max(c_count, 1)
    mode = say(
        "training (batch statistics)" if trace.training else "eval (running statistics)", lang
    )
    size = f"<code>torch.Size({esc(list(x.shape))})</code>"
    if lang == "zh":
        parts = [f"<p>批量归一化，{esc(mode)}，ε = {trace.eps:g}，输入 {size}</p>"]
    else:
        parts = [f"<p>batch norm in {esc(mode)}, ε = {trace.eps:g}, input {size}</p>"]
    rows = "".join(
        f"<tr><td>{c}</td><td>{m}</td><td>{_n(trace['mean'].value[c])}</td>"
        f"<td>{_n(trace['var'].value[c])}</td><td>{trace.gamma[c]:g}</td>"
        f"<td>{trace.beta[c]:g}</td></tr>"
        for c in range(c_count)
    )
    tables: list[tuple[str, str]] = []  # (what it holds, the table)
    tables.append(
        (
            "per-channel statistics",
            "<table class='bn'><tr><th>c</th><th>m</th><th>μ</th><th>σ²</th>"
            f"<th>γ</th><th>β</th></tr>{rows}</table>",
        )
    )
    keep = trace.keepdim_shape
    steps = "".join(
        f"<tr><td>{i}</td><td class='l'>{esc(step_title(s.name, s.title, trace.training, lang))}"
        f"</td><td class='l'>{esc(s.formula)}</td>"
        f"<td class='l'><code>torch.Size({esc(keep if s.reduced_axes else list(s.shape))})"
        f"</code></td><td class='l'>{esc(list(s.reduced_axes)) if s.reduced_axes else ''}</td></tr>"
        for i, s in enumerate(trace.steps, 1)
    )
    tables.append(
        (
            "steps",
            f"<table class='bn'><tr><th>#</th><th class='l'>{say('step', lang)}</th>"
            f"<th class='l'>{say('formula', lang)}</th><th class='l'>{say('shape', lang)}</th>"
            f"<th class='l'>{say('reduced dims', lang)}</th></tr>{steps}</table>",
        )
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
        tables.append(
            (
                "per element (channel by channel)",
                f"<table class='bn'><tr><th>c</th><th>{say('index', lang)}</th><th>x</th>"
                f"<th>x − μ</th><th>x̂</th><th>y = γ·x̂ + β</th></tr>{''.join(body)}</table>",
            )
        )
    if "running_mean" in trace:
        rm, rv = trace["running_mean"].value, trace["running_var"].value
        before = trace.meta.get("running_before")
        if before:  # the step, as the text renderer tells it: before → after
            bm, bv = before["running_mean"], before["running_var"]
            run = "".join(
                f"<tr><td>{c}</td><td>{_n(bm[c])}</td><td>{_n(rm[c])}</td><td>{_n(bv[c])}"
                f"</td><td>{_n(rv[c])}</td></tr>"
                for c in range(c_count)
            )
            after = say("after", lang)
            head = (
                f"<tr><th>c</th><th>{say('running_mean before', lang)}</th><th>{after}</th>"
                f"<th>{say('running_var before', lang)}</th><th>{after}</th></tr>"
            )
        else:
            run = "".join(
                f"<tr><td>{c}</td><td>{_n(rm[c])}</td><td>{_n(rv[c])}</td></tr>"
                for c in range(c_count)
            )
            head = "<tr><th>c</th><th>running_mean</th><th>running_var</th></tr>"
        tables.append(
            (
                "running statistics",
                f"<table class='bn'>{head}{run}</table>"
                + (
                    f"<p>这一步之后的移动平均统计量（动量 {trace.momentum:g}）</p>"
                    if lang == "zh"
                    else f"<p>running statistics after this step (momentum {trace.momentum:g})</p>"
                ),
            )
        )
    for what, table in tables:
        if collapsible:
            parts.append(f"<details><summary>{esc(say(what, lang))}</summary>{table}</details>")
        else:
            parts.append(table)
    return "<div class='bnlab-trace'>" + "\n".join(parts) + "</div>"


def section_html(section: Section, images: Mapping[str, bytes], lang: str = "en") -> str:
    heading = (
        esc(section.title_zh)
        if lang == "zh"
        else f"{esc(section.title)}<span class='zh' lang='zh'>{esc(section.title_zh)}</span>"
    )
    out = [
        f"<section id='{esc(section.key)}'>",
        f"<h2>{heading}</h2>",
        f"<p>{esc(say(section.intro, lang))}</p>",
    ]
    if section.code:
        out.append(f"<pre><code>{esc(section.code)}</code></pre>")
    if section.printed:
        label = say("prints (computed now)", lang) if section.code else ""
        if label:
            out.append(f"<p>{label}:</p>")
        printed = chr(10).join(say(p, lang) for p in section.printed)
        out.append(f"<pre class='printed'>{esc(printed)}</pre>")
        if section.source_printed:
            same = section.matches_source
            out.append(
                f"<p class='same'>{say('identical to what the source printed', lang)}</p>"
                if same
                else f"<p>{say('the source printed:', lang)}</p>"
                f"<pre>{esc(chr(10).join(section.source_printed))}</pre>"
            )
    for fig in section.figures:  # the pictures first, then the numbers behind them
        if fig.key in images:
            words = caption(fig.key, fig.caption, lang)
            out.append(
                f"<figure>{img(images[fig.key], words)}<figcaption>{esc(words)}</figcaption>"
                "</figure>"
            )
    for name, trace in section.traces.items() if section.show_traces else ():
        if trace.input.numel() <= 64:
            fragment = trace_fragment(trace, lang, collapsible=True)
            out.append(f"<h3>{say('trace', lang)}: {esc(name)}</h3>{fragment}")
    out.extend(check_lines(section.checks, lang))
    for note in section.notes:
        out.append(f"<p class='note'>{esc(say(note, lang))}</p>")
    for label, href, _ in section.pages:
        out.append(f"<p class='note'><a href='{esc(href)}'>{esc(say(label, lang))}</a></p>")
    if section.exercises:
        open_it = "在交互页面中打开" if lang == "zh" else "open it in the explorer"
        items = "".join(
            f"<li>{esc(say(ex.question, lang))} <a href='{esc(ex.url(lang))}'>{open_it}</a></li>"
            for ex in section.exercises
        )
        out.append(f"<ol class='exercises'>{items}</ol>")
    out.append("</section>")
    return "\n".join(out)


def page(
    title: str,
    title_zh: str,
    intro: str,
    sections: Iterable[Section],
    images: Mapping[str, bytes],
    lang: str = "en",
) -> str:
    """One self-contained HTML page walking through ``sections`` in order."""
    sections = list(sections)
    if lang == "zh":
        nav = "".join(f"<li><a href='#{esc(s.key)}'>{esc(s.title_zh)}</a></li>" for s in sections)
        h1, head_title = esc(title_zh), esc(title_zh)
    else:
        nav = "".join(
            f"<li><a href='#{esc(s.key)}'>{esc(s.title)}</a> "
            f"<span lang='zh'>{esc(s.title_zh)}</span></li>"
            for s in sections
        )
        h1 = f"{esc(title)}<span class='zh' lang='zh'>{esc(title_zh)}</span>"
        head_title = esc(title)
    body = "\n".join(section_html(s, images, lang) for s in sections)
    return (
        f"<!DOCTYPE html>\n<html lang='{lang}'>\n<head>\n<meta charset='utf-8'>\n{VIEWPORT}"
        f"<title>{head_title}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n"
        f"<h1>{h1}</h1>\n"
        f"<p>{esc(say(intro, lang))}</p>\n<nav><ol>{nav}</ol></nav>\n{body}\n</body>\n</html>\n"
    )


def check_lines(checks: Iterable[Check], lang: str = "en") -> list[str]:
    """One paragraph per check against torch, marked ✓ or ✗ by the stylesheet."""
    return [f"<p class='check {'ok' if c.ok else 'bad'}'>{esc(c.line(lang))}</p>" for c in checks]


def trace_page(
    trace: Trace,
    images: Mapping[str, bytes],
    captions: Mapping[str, str],
    checks: Iterable[Check] = (),
) -> str:
    """``bnlab explain --format html``: a trace, its checks, tables and figures, self-contained."""
    figs = "".join(
        f"<figure>{img(v, captions[k])}<figcaption>{esc(captions[k])}</figcaption></figure>"
        for k, v in images.items()
    )
    return (
        f"<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n{VIEWPORT}"
        f"<title>bnlab explain</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n"
        f"<h1>Batch normalization, step by step</h1>\n{trace_fragment(trace)}\n"
        f"{''.join(check_lines(checks))}\n{figs}\n"
        "</body>\n</html>\n"
    )
