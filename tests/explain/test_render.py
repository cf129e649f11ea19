"""Every number the text and HTML renderers print, against torch.nn.BatchNorm*d on one tensor."""

from __future__ import annotations

import re

import pytest
import torch

from bnlab.explain import explain
from bnlab.explain.html import trace_fragment
from bnlab.explain.text import trace_text

CASES = [
    ("seed", (2, 2, 2, 2), [2.0, 5.0], [3.0, 8.0]),
    ("fc", (4, 3), [1.5, -2.0, 0.5], [0.0, 1.0, -1.0]),
    ("conv", (3, 2, 2, 3), None, None),
]


def _torch_reference(shape, gamma, beta):
    torch.manual_seed(0)
    x = torch.rand(shape)
    c = shape[1]
    bn = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(c)
    with torch.no_grad():
        if gamma is not None:
            bn.weight.copy_(torch.tensor(gamma))
            bn.bias.copy_(torch.tensor(beta))
        y = bn(x)
    axes = (0, *range(2, x.dim()))
    mean, var = x.mean(dim=axes), x.var(dim=axes, unbiased=False)
    xhat = (y - bn.bias.reshape((1, -1) + (1,) * (x.dim() - 2))) / bn.weight.reshape(
        (1, -1) + (1,) * (x.dim() - 2)
    )
    return x, mean, var, xhat.detach(), y, bn


def _trace(shape, gamma, beta):
    torch.manual_seed(0)
    return explain(torch.rand(shape), gamma, beta)


def _close(printed: float, truth: float) -> bool:
    return abs(printed - truth) <= 5e-6 + 1e-5 * abs(truth)  # printed with 6 decimals


@pytest.mark.parametrize(("name", "shape", "gamma", "beta"), CASES, ids=[c[0] for c in CASES])
def test_text_numbers_match_torch(name, shape, gamma, beta):
    x, mean, var, xhat, y, bn = _torch_reference(shape, gamma, beta)
    out = trace_text(_trace(shape, gamma, beta))
    stats_rows = re.findall(r"│\s+(\d+) │\s+(\d+) │\s+(-?[\d.]+) │\s+(-?[\d.]+) │", out)
    assert len(stats_rows) == shape[1], out
    for c, (ch, m, mu, s2) in enumerate(stats_rows):
        assert int(ch) == c and int(m) == x.numel() // shape[1]
        assert _close(float(mu), mean[c].item()) and _close(float(s2), var[c].item())
    elem_rows = re.findall(
        r"│\s+(\d+) │\s+\(([\d, ]+)\) │" + r"\s+(-?[\d.]+) │" * 4,
        out,
    )
    assert len(elem_rows) == x.numel()
    for _ch, where, xv, xc, xh, yv in elem_rows:
        idx = tuple(int(v) for v in where.split(","))
        c = idx[1]
        assert _close(float(xv), x[idx].item())
        assert _close(float(xc), x[idx].item() - mean[c].item())
        assert _close(float(xh), xhat[idx].item())
        assert _close(float(yv), y[idx].item())
    num = r"\s+(-?\d+\.\d+) │"
    run = re.findall(r"│\s+(\d+) │" + num * 4 + "$", out, flags=re.M)
    assert len(run) == shape[1]
    for c, (_ch, _bm, am, _bv, av) in enumerate(run):
        assert _close(float(am), bn.running_mean[c].item())
        assert _close(float(av), bn.running_var[c].item())


@pytest.mark.parametrize(("name", "shape", "gamma", "beta"), CASES, ids=[c[0] for c in CASES])
def test_html_numbers_match_torch(name, shape, gamma, beta):
    x, mean, var, xhat, y, _bn = _torch_reference(shape, gamma, beta)
    frag = trace_fragment(_trace(shape, gamma, beta))
    rows = re.findall(r"<tr>((?:<td>[^<]*</td>)+)</tr>", frag)
    cells = [re.findall(r"<td>([^<]*)</td>", r) for r in rows]
    stats = [
        c
        for c in cells
        if len(c) == 6 and "." in c[2] and c[1].isdigit() and int(c[1]) == x.numel() // shape[1]
    ]
    assert len(stats) == shape[1]
    for c, row in enumerate(stats):
        assert _close(float(row[2]), mean[c].item()) and _close(float(row[3]), var[c].item())
    elems = [c for c in cells if len(c) == 6 and c[1].startswith("(")]
    assert len(elems) == x.numel()
    for row in elems:
        idx = tuple(int(v) for v in row[1].strip("()").split(","))
        c = int(row[0])
        assert idx[1] == c
        assert _close(float(row[2]), x[idx].item())
        assert _close(float(row[3]), x[idx].item() - mean[c].item())
        assert _close(float(row[4]), xhat[idx].item())
        assert _close(float(row[5]), y[idx].item())
    assert "http://" not in frag and "https://" not in frag
