"""Layer, instance and group norm traced like batch norm: the same reduce move, other axes.

``explain_norm`` returns a :class:`Trace` with the same steps as batch norm's (input, mean, var,
x − μ, x̂, y).  Only the statistics' shape changes: one value per sample (layer), per sample and
channel (instance), or per sample and group of channels (group).  γ and β stay per channel.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..errors import BNValueError
from ..stats import NORMALIZATIONS, group_view, normalization_axes, reduce
from .trace import STEP_INFO, Step, Trace, explain

STAT_SHAPE = {  # what one mean/variance is per, for an (N, C, ...) input
    "batch": "per channel",
    "layer": "per sample",
    "instance": "per sample and channel",
    "group": "per sample and group",
}


def stat_shape(kind: str, shape: tuple[int, ...], groups: int = 1) -> tuple[int, ...]:
    """The shape of μ and σ² for ``kind`` on an input of ``shape``."""
    n, c = shape[0], shape[1]
    return {"batch": (c,), "layer": (n,), "instance": (n, c), "group": (n, groups)}[kind]


def explain_norm(
    x: Tensor,
    norm: str = "batch",
    *,
    groups: int = 1,
    weight: Any = None,
    bias: Any = None,
    eps: float = 1e-5,
    **batch_kwargs: Any,
) -> Trace:
    """Trace of ``norm`` normalization of ``x`` (N, C, ...); batch norm goes through ``explain``."""
    if norm not in NORMALIZATIONS:
        raise BNValueError(f"norm must be one of {', '.join(NORMALIZATIONS)} (got {norm!r})")
    if norm == "batch":
        trace = explain(x, weight, bias, eps, **batch_kwargs)
        trace.meta["norm"] = "batch"
        return trace
    if not eps > 0:
        raise BNValueError(f"eps must be positive (got {eps})")
    x = x.detach()
    n, c = x.shape[0], x.shape[1]
    view = group_view(x, groups) if norm == "group" else x  # group: (N, G, C/G·spatial)
    axes = normalization_axes(norm, view.dim())
    s = reduce(view, axes)  # move 1 over this normalization's axes
    keep = [1 if i in axes else d for i, d in enumerate(view.shape)]
    acc = s.mean.dtype  # float32 for 16-bit input
    xc = view.to(acc) - s.mean.reshape(keep)  # x − μ
    xhat = xc / torch.sqrt(s.var.reshape(keep) + eps)  # x̂
    xc, xhat = xc.reshape(x.shape), xhat.reshape(x.shape)
    chan = (1, -1) + (1,) * (x.dim() - 2)
    w = None if weight is None else torch.as_tensor(weight, dtype=acc).flatten()
    b = None if bias is None else torch.as_tensor(bias, dtype=acc).flatten()
    for name, t in (("weight (γ)", w), ("bias (β)", b)):
        if t is not None and t.numel() != c:
            raise BNValueError(
                f"expected {name} with {c} values, one per channel (got {t.numel()})"
            )
    y = xhat  # computed in the accumulate dtype, returned in the input's, like batch norm
    if w is not None:
        y = y * w.reshape(chan)
    if b is not None:
        y = y + b.reshape(chan)
    # the reduced axes, in terms of the (N, C, ...) input
    in_axes = {
        "layer": tuple(range(1, x.dim())),
        "instance": tuple(range(2, x.dim())),
        "group": tuple(range(1, x.dim())),
    }[norm]
    xc, xhat, y = (t.to(x.dtype) for t in (xc, xhat, y))  # returned in the input's dtype
    steps = []
    for name, value in (
        ("input", x),
        ("mean", s.mean),
        ("var", s.var),
        ("x_minus_mean", xc),
        ("xhat", xhat),
        ("output", y),
    ):
        title, formula, latex, reduces = STEP_INFO[name]
        # not a mini-batch statistic: μ and σ² without the B
        formula = formula.replace("μ_B", "μ").replace("σ²_B", "σ²")
        latex = latex.replace(r"\mu_B", r"\mu").replace(r"\sigma_B^2", r"\sigma^2")
        if reduces:
            title = f"{title.replace('per-channel', '')} {STAT_SHAPE[norm]}".strip()
        steps.append(Step(name, title, formula, latex, value, in_axes if reduces else ()))
    return Trace(
        steps,
        True,
        float(eps),
        0.0,
        w,
        b,
        {
            "norm": norm,
            "groups": groups,
            "stat_shape": list(stat_shape(norm, x.shape, groups)),
            "n": n,
        },
    )
