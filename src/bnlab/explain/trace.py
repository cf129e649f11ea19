"""Move 4 made visible: a ``Trace`` of batch normalization on one tensor.

``explain(x, ...)`` runs the real ``bnlab.functional`` code path with a recorder attached and keeps
every intermediate it computed, in order, with its formula, shape and the axes it reduced.
Nothing is recomputed on the side: the trace's output *is* the function's output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import BNTypeError, BNValueError
from ..functional import batch_norm
from ..record import recording

# name → (title, plain-text formula, LaTeX formula, reduces over the batch axes?)
STEP_INFO: dict[str, tuple[str, str, str, bool]] = {
    "input": ("input x", "x", r"x", False),
    "mean": ("per-channel mean", "μ_B = (1/m) Σ x", r"\mu_B = \frac{1}{m}\sum_{i=1}^{m} x_i", True),
    "var": (
        "per-channel variance",
        "σ²_B = (1/m) Σ (x − μ_B)²",
        r"\sigma_B^2 = \frac{1}{m}\sum_{i=1}^{m} (x_i - \mu_B)^2",
        True,
    ),
    "x_minus_mean": ("centre", "x − μ_B", r"x_i - \mu_B", False),
    "xhat": (
        "normalize",
        "x̂ = (x − μ_B) / √(σ²_B + ε)",
        r"\hat{x}_i = \frac{x_i - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}",
        False,
    ),
    "output": ("scale and shift", "y = γ·x̂ + β", r"y_i = \gamma \hat{x}_i + \beta", False),
    "running_mean": (
        "running mean update",
        "running_mean ← (1 − momentum)·running_mean + momentum·μ_B",
        r"\hat{\mu} \leftarrow (1 - \text{momentum})\,\hat{\mu} + \text{momentum}\cdot\mu_B",
        False,
    ),
    "running_var": (
        "running variance update",
        "running_var ← (1 − momentum)·running_var + momentum·σ²_B·m/(m − 1)",
        r"\hat{\sigma}^2 \leftarrow (1 - \text{momentum})\,\hat{\sigma}^2"
        r" + \text{momentum}\cdot\frac{m}{m-1}\sigma_B^2",
        False,
    ),
}
EVAL_INFO = {  # in prediction mode the running statistics stand where μ_B and σ²_B stood
    "mean": ("running mean (used as μ)", "μ = running_mean", r"\mu = \hat{\mu}", False),
    "var": (
        "running variance (used as σ²)",
        "σ² = running_var",
        r"\sigma^2 = \hat{\sigma}^2",
        False,
    ),
    "x_minus_mean": ("centre", "x − μ", r"x_i - \mu", False),
    "xhat": (
        "normalize",
        "x̂ = (x − μ) / √(σ² + ε)",
        r"\hat{x}_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}}",
        False,
    ),
}
ORDER = ("input", "mean", "var", "x_minus_mean", "xhat", "output", "running_mean", "running_var")
MAX_ELEMENTS_TO_DRAW = 4096


@dataclass
class Step:
    """One intermediate of batch normalization, as computed."""

    name: str
    title: str
    formula: str
    latex: str
    value: Tensor
    reduced_axes: tuple[int, ...] = ()

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def __repr__(self) -> str:
        axes = f", reduced over dims {self.reduced_axes}" if self.reduced_axes else ""
        return f"Step({self.name!r}: {self.formula}, torch.Size({list(self.shape)}){axes})"


@dataclass
class Trace:
    """The ordered steps of batch normalization on one input, with the settings that produced it."""

    steps: list[Step]
    training: bool
    eps: float
    momentum: float
    weight: Tensor | None = None
    bias: Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"no step {name!r} in this trace (steps: {', '.join(self.names)})")

    def __contains__(self, name: object) -> bool:
        return any(s.name == name for s in self.steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    @property
    def input(self) -> Tensor:
        return self["input"].value

    @property
    def output(self) -> Tensor:
        return self["output"].value

    @property
    def channels(self) -> int:
        return self.input.shape[1]

    @property
    def gamma(self) -> Tensor:
        """γ per channel (ones when no weight was given)."""
        c, dt = self.channels, self.output.dtype
        return torch.ones(c, dtype=dt) if self.weight is None else self.weight.to(dt)

    @property
    def beta(self) -> Tensor:
        """β per channel (zeros when no bias was given)."""
        c, dt = self.channels, self.output.dtype
        return torch.zeros(c, dtype=dt) if self.bias is None else self.bias.to(dt)

    @property
    def keepdim_shape(self) -> list[int]:
        """[1, C, 1, 1]: a per-channel statistic kept broadcastable against the input."""
        return [self.channels if i == 1 else 1 for i in range(self.input.dim())]

    def channel_index(self, c: int, i: int) -> tuple[int, ...]:
        """The (n, c, h, w, …) index of the i-th element of ``value[:, c].reshape(-1)``."""
        rest = []
        for size in reversed(self.input.shape[2:]):
            i, r = divmod(i, size)
            rest.append(r)
        return (i, c, *reversed(rest))

    def __repr__(self) -> str:
        mode = "training" if self.training else "eval"
        lines = [f"Trace({mode}, eps={self.eps}, input torch.Size({list(self.input.shape)}))"]
        lines += [f"  {i}. {s!r}" for i, s in enumerate(self.steps, 1)]
        return "\n".join(lines)

    # --- JSON ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        def t(v: Tensor | None) -> dict[str, Any] | None:
            if v is None:
                return None
            return {
                "dtype": str(v.dtype).removeprefix("torch."),
                "shape": list(v.shape),
                "data": v.detach().cpu().double().flatten().tolist(),
            }

        return {
            "format": "bnlab.trace/1",
            "training": self.training,
            "eps": self.eps,
            "momentum": self.momentum,
            "weight": t(self.weight),
            "bias": t(self.bias),
            "meta": self.meta,
            "steps": [
                {
                    "name": s.name,
                    "title": s.title,
                    "formula": s.formula,
                    "latex": s.latex,
                    "shape": list(s.shape),
                    "reduced_axes": list(s.reduced_axes),
                    "value": t(s.value),
                }
                for s in self.steps
            ],
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trace:
        if not isinstance(d, dict):
            raise BNValueError(
                f"expected a bnlab.trace/1 document (a JSON object), got {type(d).__name__}"
            )
        if d.get("format") != "bnlab.trace/1":
            raise BNValueError(
                f"expected a bnlab.trace/1 document (got format {d.get('format')!r})"
            )

        def t(v: dict[str, Any] | None) -> Tensor | None:
            if v is None:
                return None
            dtype = getattr(torch, v["dtype"])
            return torch.tensor(v["data"], dtype=torch.float64).to(dtype).reshape(v["shape"])

        steps = [
            Step(
                s["name"],
                s["title"],
                s["formula"],
                s["latex"],
                t(s["value"]),  # type: ignore[arg-type]
                tuple(s["reduced_axes"]),
            )
            for s in d["steps"]
        ]
        return cls(
            steps,
            d["training"],
            d["eps"],
            d["momentum"],
            t(d["weight"]),
            t(d["bias"]),
            d.get("meta", {}),
        )

    @classmethod
    def from_json(cls, text: str) -> Trace:
        return cls.from_dict(json.loads(text))

    # --- Jupyter ------------------------------------------------------------------------------

    def _repr_html_(self) -> str:
        from .html import trace_fragment

        return trace_fragment(self)


def _as_channel_tensor(name: str, v: Any, channels: int, dtype: torch.dtype) -> Tensor | None:
    if v is None:
        return None
    if isinstance(v, Tensor):
        t = v.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(v, dtype=np.float64)).flatten()
        except (TypeError, ValueError) as e:
            raise BNTypeError(
                f"explain: expected {name} to be numbers, one per channel ({e})"
            ) from None
    if t.numel() != channels:
        raise BNValueError(
            f"explain: expected {name} with {channels} values, one per channel (got {t.numel()})"
        )
    return t.to(dtype)


def explain(
    x: Tensor | np.ndarray | list,
    weight: Tensor | list[float] | None = None,
    bias: Tensor | list[float] | None = None,
    eps: float = 1e-5,
    *,
    running_mean: Tensor | list[float] | None = None,
    running_var: Tensor | list[float] | None = None,
    training: bool = True,
    momentum: float = 0.1,
) -> Trace:
    """Batch-normalize ``x`` (N, C, ...) through ``bnlab.functional`` and keep every step.

    The caller's tensors are never modified: running statistics are updated on copies, whose
    new values appear as the ``running_mean``/``running_var`` steps.
    """
    if not isinstance(x, Tensor):
        try:
            keep64 = isinstance(x, np.ndarray) and x.dtype == np.float64  # else torch's float32
            x = torch.as_tensor(np.asarray(x, dtype=np.float64))
            x = x if keep64 else x.float()
        except (TypeError, ValueError) as e:
            raise BNTypeError(
                f"explain: expected a tensor or nested list of numbers ({e})"
            ) from None
    x = x.detach()
    if x.dim() < 2:
        raise BNValueError(
            f"explain: expected input of shape (N, C, ...) (got shape {tuple(x.shape)})"
        )
    c = x.shape[1]
    acc = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    w = _as_channel_tensor("weight (γ)", weight, c, acc)
    b = _as_channel_tensor("bias (β)", bias, c, acc)
    rm = _as_channel_tensor("running_mean", running_mean, c, acc)
    rv = _as_channel_tensor("running_var", running_var, c, acc)
    if training and rm is None and rv is None:
        rm, rv = torch.zeros(c, dtype=acc), torch.ones(c, dtype=acc)  # a fresh module's buffers
    rm = None if rm is None else rm.clone()
    rv = None if rv is None else rv.clone()
    before = {
        "running_mean": None if rm is None else rm.clone(),
        "running_var": None if rv is None else rv.clone(),
    }

    recorded: dict[str, Tensor] = {}

    def recorder(step: str, value: Tensor) -> None:
        recorded[step] = value.detach().clone()

    with recording(recorder):  # the very call the modules make, with an observer attached
        out = batch_norm(x, rm, rv, w, b, training, momentum, eps)
    # the record is the computation, not a copy of it (NaN from a NaN input counts as equal)
    if not torch.allclose(recorded["output"], out, rtol=0, atol=0, equal_nan=True):
        raise AssertionError("explain: recorded output differs from the function's output")

    axes = (0, *range(2, x.dim()))
    info = dict(STEP_INFO)
    if not training:
        info.update(EVAL_INFO)
    steps = []
    for name in ORDER:
        if name not in recorded:
            continue
        title, formula, latex, reduces = info[name]
        steps.append(Step(name, title, formula, latex, recorded[name], axes if reduces else ()))
    meta: dict[str, Any] = {}
    if training and before["running_mean"] is not None:
        meta["running_before"] = {k: v.tolist() for k, v in before.items() if v is not None}
    return Trace(steps, bool(training), float(eps), float(momentum), w, b, meta)
