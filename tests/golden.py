"""Golden-file comparison: rendered output must equal the file under tests/golden/.

Regenerate on purpose with ``pytest --regen-golden`` after a deliberate change, and review
the diff before committing it.
"""

from __future__ import annotations

import difflib
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def check(request, name: str, actual: str) -> None:
    path = GOLDEN / name
    if request.config.getoption("--regen-golden"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"missing golden file {path}; run pytest --regen-golden to create it"
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            list(
                difflib.unified_diff(
                    expected.splitlines(True), actual.splitlines(True), f"golden/{name}", "actual"
                )
            )[:60]
        )
        raise AssertionError(
            f"{name} differs from its golden file "
            f"(pytest --regen-golden rewrites it on purpose):\n{diff}"
        )
