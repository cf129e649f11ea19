"""Terminal renderer: a trace or a whole section as rich tables, shapes as ``torch.Size([...])``.

Output is deterministic (fixed width, no colour when exported), so it can be compared with
golden files.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from .examples import Check, Section
from .lang import caption, say, step_title
from .trace import Trace

WIDTH = 100
MAX_ROWS = 32  # element rows shown per channel before "… n more"


def make_console(file: io.TextIOBase | None = None, record: bool = False) -> Console:
    """A console of fixed width; without a terminal it writes plain text."""
    return Console(
        width=WIDTH, file=file, record=record, highlight=False, soft_wrap=False, emoji=False
    )


def _num(v: float) -> str:
    return f"{v:.6f}"


def _size(shape: Iterable[int]) -> str:
    return f"torch.Size({list(shape)})"


def trace_renderables(trace: Trace, lang: str = "en") -> list:
    """The trace as a list of rich renderables, one per step."""
    x = trace.input
    out: list = []
    mode = "training (batch statistics)" if trace.training else "eval (running statistics)"
    if lang == "zh":
        head = f"批量归一化，{say(mode, lang)}，eps = {trace.eps:g}，输入 {_size(x.shape)}"
        out.append(Text(head))
    else:
        out.append(Text(f"batch norm in {mode}, eps = {trace.eps:g}, input {_size(x.shape)}"))
    stats = Table(title=say("per-channel statistics", lang), title_justify="left")
    for col in ("c", "m", "μ", "σ²", "γ", "β"):
        stats.add_column(col, justify="right")
    m = x.numel() // max(trace.channels, 1)
    mean, var = trace["mean"].value, trace["var"].value
    for c in range(trace.channels):
        stats.add_row(
            str(c),
            str(m),
            _num(mean[c]),
            _num(var[c]),
            f"{trace.gamma[c]:g}",
            f"{trace.beta[c]:g}",
        )
    out.append(stats)
    steps = Table(title=say("steps", lang), title_justify="left")
    for col in ("#", "step", "formula", "shape", "reduced dims"):
        steps.add_column(say(col, lang))
    for i, step in enumerate(trace.steps, 1):
        keep = step.reduced_axes and step.value.dim() == 1
        shape = _size(trace.keepdim_shape) if keep else _size(step.shape)
        steps.add_row(
            str(i),
            step_title(step.name, step.title, trace.training, lang),
            step.formula,
            shape,
            str(list(step.reduced_axes)) if step.reduced_axes else "",
        )
    out.append(steps)
    elems = Table(title=say("per element (channel by channel)", lang), title_justify="left")
    for col in ("c", "index", "x", "x − μ", "x̂", "y"):
        elems.add_column(say(col, lang), justify="right")
    xc, xh, y = trace["x_minus_mean"].value, trace["xhat"].value, trace.output
    for c in range(trace.channels):
        xs = x[:, c].reshape(-1)
        rows = len(xs)
        for i in range(min(rows, MAX_ROWS)):
            where = "(" + ", ".join(str(v) for v in trace.channel_index(c, i)) + ")"
            elems.add_row(
                str(c),
                where,
                _num(xs[i]),
                _num(xc[:, c].reshape(-1)[i]),
                _num(xh[:, c].reshape(-1)[i]),
                _num(y[:, c].reshape(-1)[i]),
            )
        if rows > MAX_ROWS:
            more = f"… 另有 {rows - MAX_ROWS} 个" if lang == "zh" else f"… {rows - MAX_ROWS} more"
            elems.add_row(str(c), more, "", "", "", "")
    out.append(elems)
    if "running_mean" in trace:
        rm, rv = trace["running_mean"].value, trace["running_var"].value
        before = trace.meta.get("running_before", {})
        title = (
            f"移动平均的统计量（动量 {trace.momentum:g}）"
            if lang == "zh"
            else f"running statistics (momentum {trace.momentum:g})"
        )
        run = Table(title=title, title_justify="left")
        for col in ("c", "running_mean before", "after", "running_var before", "after"):
            run.add_column(say(col, lang), justify="right")
        for c in range(trace.channels):
            bm = before.get("running_mean", [float("nan")] * trace.channels)[c]
            bv = before.get("running_var", [float("nan")] * trace.channels)[c]
            run.add_row(str(c), _num(bm), _num(rm[c]), _num(bv), _num(rv[c]))
        out.append(run)
    return out


def render_trace(trace: Trace, console: Console, lang: str = "en") -> None:
    for r in trace_renderables(trace, lang):
        console.print(r)


def render_section(
    section: Section, console: Console, show_traces: bool = True, lang: str = "en"
) -> None:
    heading = section.title_zh if lang == "zh" else f"{section.title} · {section.title_zh}"
    console.print(Rule(heading, characters="─"))
    console.print(Text(say(section.intro, lang)))
    if section.code:
        console.print(
            Text(
                "\n".join(("    " + line).rstrip() for line in section.code.splitlines()),
                style="cyan",
            )
        )
    if section.printed:
        console.print(say("prints (computed now):", lang) if section.code else "")
        for line in section.printed:
            console.print(Text("\n".join("    " + s for s in say(line, lang).splitlines())))
        if section.source_printed:
            same = section.matches_source
            console.print(
                f"[green]{say('identical to what the source printed', lang)}[/]"
                if same
                else f"[yellow]{say('the source printed:', lang)}[/] "
                + " | ".join(section.source_printed)
            )
    if show_traces and section.show_traces:
        for name, trace in section.traces.items():
            if trace.input.numel() <= 64:
                label = f"记录 '{name}'：" if lang == "zh" else f"trace '{name}':"
                console.print(Text(label, style="bold"))
                render_trace(trace, console, lang)
    render_checks(section.checks, console, lang)
    for note in section.notes:
        console.print(Text("• " + say(note, lang)))
    for i, ex in enumerate(section.exercises, 1):
        console.print(Text(f"{i}. {say(ex.question, lang)}"))
        console.print(Text(f"   → {ex.url(lang)}", style="dim"), soft_wrap=True)
    for fig in section.figures:
        words = caption(fig.key, fig.caption, lang)
        label = f"[图：{words}]" if lang == "zh" else f"[figure: {words}]"
        console.print(Text(label, style="dim"))
    console.print()


def render_sections(sections: Iterable[Section], console: Console, lang: str = "en") -> None:
    for s in sections:
        render_section(s, console, lang=lang)


def render_checks(checks: Iterable[Check], console: Console, lang: str = "en") -> None:
    """One line per check: ✓ or ✗, what was compared with what, and the max |Δ|."""
    for check in checks:
        mark = "[green]✓[/]" if check.ok else "[red]✗[/]"
        console.print(Text.from_markup(mark).append(" " + check.line(lang)))


def trace_text(trace: Trace, checks: Iterable[Check] = ()) -> str:
    """The trace as plain text (what ``bnlab explain --format text`` prints), then its checks."""
    buf = io.StringIO()
    console = make_console(file=buf)
    render_trace(trace, console)
    render_checks(checks, console)
    return buf.getvalue()


def sections_text(sections: Iterable[Section], lang: str = "en") -> str:
    buf = io.StringIO()
    render_sections(sections, make_console(file=buf), lang)
    return buf.getvalue()
