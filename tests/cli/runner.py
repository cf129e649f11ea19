"""Run ``bnlab`` in this process, as the shell would: exit status, standard output and error."""

from __future__ import annotations

from bnlab.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``bnlab ARGV``: (exit status, stdout, stderr); argparse's own exits are caught too."""
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse: --help, --version, its own usage errors
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err
