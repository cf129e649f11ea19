"""What the README shows runs as shown: every ``bnlab`` line, every Python block, the set-up."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from bnlab.cli import parser
from tests.cli.runner import run
from tests.helpers import tiny_fashion_mnist

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _bnlab_lines(text: str) -> list[list[str]]:
    """The argument lists of every code-block line running bnlab (``bnlab …``, ``.venv/bin/…``)."""
    found = []
    for block in re.findall(r"^```\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.splitlines():
            for prefix in ("bnlab ", ".venv/bin/bnlab "):
                if line.startswith(prefix):
                    found.append(shlex.split(line.removeprefix(prefix), comments=True))
    return found


def test_every_bnlab_command_in_the_readme_runs(tmp_path, monkeypatch, capsys):
    """Each `bnlab ...` line of the README, verbatim, in a fresh folder (tiny data for train)."""
    from bnlab.experiments import data as data_mod
    from bnlab.web import app as web_app

    commands = _bnlab_lines(README)
    assert {c[0] for c in commands} >= {"tour", "explain", "train", "compare", "serve", "--help"}
    tiny_fashion_mnist(tmp_path / "data", monkeypatch)
    served = []
    monkeypatch.setattr(web_app, "serve", lambda *a, **k: served.append(a))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for argv in commands:
        code, out, err = run(capsys, *argv)
        assert code == 0, f"bnlab {shlex.join(argv)} exited {code}: {err}"
        assert out or "wrote" in err, argv
    assert served == [("127.0.0.1", 8000, None, False)]  # None: the committed runs
    assert (work / "runs" / "compare" / "index.html").exists()
    assert (work / "bnlab-tour" / "index.html").exists()
    data_mod.clear_cache()


def test_every_python_block_in_the_readme_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})


def test_the_commands_that_made_the_results_parse():
    """docs/results names the full-length commands behind each result: each one parses."""
    results = (ROOT / "docs" / "results" / "README.md").read_text(encoding="utf-8")
    commands = [c for c in re.findall(r"`(bnlab [^`]+)`", results) if "--out" in c]
    assert len(commands) >= 10
    p = parser.build()
    for command in commands:
        args = p.parse_args(shlex.split(command)[1:])
        assert args.command in ("train", "compare"), command


def test_the_set_up_says_what_it_installs_and_how_to_skip_it():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    packages = re.search(r"^APT_PACKAGES := (.*)$", makefile, flags=re.M).group(1).split()
    for package in [*packages, "chromium"]:
        assert f"`{package}`" in README, package
    assert "SYSTEM ?= 1" in makefile and "make test SYSTEM=0" in README
    assert ">/dev/null \\\n" not in makefile.split("apt:")[1]  # apt's progress is shown
    assert ".venv/bin/bnlab" in README and "source .venv/bin/activate" in README
