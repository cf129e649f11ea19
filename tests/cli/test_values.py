"""Option values: each parser returns the value or raises one line naming option and value."""

from __future__ import annotations

import pytest

from bnlab.cli import values
from bnlab.cli.values import UsageError

GOOD = [
    ("shape", ("--shape", "2,3,4,4"), (2, 3, 4, 4)),
    ("numbers with negatives", ("--gamma", "-1,2.5,3e2"), [-1.0, 2.5, 300.0]),
    ("positive number", ("--eps", "1e-3"), 1e-3),
    ("seed zero", ("--seed", "0"), 0),
    ("largest seed", ("--seed", str(2**64 - 1)), 2**64 - 1),
    ("count", ("--epochs", "3"), 3),
]
PARSERS = {
    "--shape": values.shape,
    "--gamma": values.numbers,
    "--eps": lambda o, t: values.number(o, t, positive=True),
    "--seed": values.seed,
    "--epochs": values.count,
}


@pytest.mark.parametrize(("case", "args", "expected"), GOOD, ids=[g[0] for g in GOOD])
def test_good_values(case, args, expected):
    assert PARSERS[args[0]](*args) == expected


BAD = [
    ("empty shape", "--shape", "", "expected comma-separated integers"),
    ("one size", "--shape", "4", "expected 2 to 5 positive sizes"),
    ("six sizes", "--shape", "1,2,3,4,5,6", "expected 2 to 5 positive sizes"),
    ("zero size", "--shape", "2,0", "expected 2 to 5 positive sizes"),
    ("empty numbers", "--gamma", "", "expected comma-separated numbers"),
    ("trailing comma", "--gamma", "1,", "expected comma-separated numbers"),
    ("nan in numbers", "--gamma", "nan,1", "expected finite numbers"),
    ("overflow to inf", "--gamma", "1e400,1", "expected finite numbers"),
    ("-inf", "--gamma", "-inf", "expected finite numbers"),
    ("eps zero", "--eps", "0", "expected a positive number"),
    ("eps inf", "--eps", "inf", "expected a positive number"),
    ("eps nan", "--eps", "nan", "expected a positive number"),
    ("eps 1e400", "--eps", "1e400", "expected a positive number"),
    ("seed 2^64", "--seed", str(2**64), "from 0 to 2^64 − 1"),
    ("negative seed", "--seed", "-1", "from 0 to 2^64 − 1"),
    ("fractional seed", "--seed", "1.5", "expected a whole number"),
    ("zero epochs", "--epochs", "0", "expected a positive whole number"),
    ("epochs text", "--epochs", "ten", "expected a positive whole number"),
]


@pytest.mark.parametrize(("case", "option", "text", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_values_name_the_option_and_the_value(case, option, text, message):
    with pytest.raises(UsageError) as info:
        PARSERS[option](option, text)
    said = str(info.value)
    assert said.startswith(f"{option}: ") and message in said
    assert "\n" not in said


def test_paths(tmp_path):
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    assert values.out_folder("--out", str(tmp_path / "new"), "it") == tmp_path / "new"
    assert values.out_file("--out", str(a_file), "x.txt") == a_file  # overwriting a file is fine
    with pytest.raises(UsageError, match="is a file; expected a folder"):
        values.out_folder("--out", str(a_file), "it")
    with pytest.raises(UsageError, match=r"is a file, so .* cannot be a folder"):
        values.out_folder("--out", str(a_file / "sub"), "it")
    with pytest.raises(UsageError, match=r"is a folder; expected a file path like x\.txt"):
        values.out_file("--out", str(tmp_path), "x.txt")
    with pytest.raises(UsageError, match=r"is a file, so .* cannot be written"):
        values.out_file("--out", str(a_file / "x.txt"), "x.txt")
    with pytest.raises(UsageError, match="does not exist"):
        values.in_folder("DIR", str(tmp_path / "missing"), "runs")
    with pytest.raises(UsageError, match="is a file; expected a folder of runs"):
        values.in_folder("DIR", str(a_file), "runs")
