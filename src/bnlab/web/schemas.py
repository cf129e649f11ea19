"""Request bodies of the explorer's API, validated at the boundary (HTTP 422 naming the field)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_ELEMENTS = 4096


FLOAT32_MAX = 3.4028234663852886e38  # tensors are float32: larger values would become inf


def _count(n: int, noun: str) -> str:
    """``1 value``, ``2 values``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _finite(name: str, values: list[float] | None) -> None:
    if values is not None and not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in values):
        raise ValueError(f"{name}: every value must be a finite float32 number (|v| ≤ 3.4e38)")


class TensorSpec(BaseModel):
    """A tensor: its shape, and either a seed for torch.rand or its values (flat, row-major)."""

    model_config = ConfigDict(extra="forbid")

    shape: list[int] = Field(default=[2, 2, 2, 2], min_length=2, max_length=4)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    values: list[float] | None = None

    @property
    def channels(self) -> int:
        return self.shape[1]

    @model_validator(mode="after")
    def _check_tensor(self) -> TensorSpec:
        if len(self.shape) == 3:
            raise ValueError("shape: expected (N, F) or (N, C, H, W) (got 3 dimensions)")
        if any(d < 1 for d in self.shape):
            raise ValueError(f"shape: every size must be ≥ 1 (got {self.shape})")
        numel = math.prod(self.shape)
        if numel > MAX_ELEMENTS:
            raise ValueError(f"shape: at most {MAX_ELEMENTS} elements (got {numel})")
        if self.values is not None and len(self.values) != numel:
            raise ValueError(
                f"values: expected {_count(numel, 'value')} for shape {self.shape} "
                f"(got {len(self.values)})"
            )
        _finite("values", self.values)
        return self


class ExplainRequest(TensorSpec):
    gamma: list[float] | None = None
    beta: list[float] | None = None
    eps: float = Field(default=1e-5, gt=0, le=1e3)
    mode: Literal["train", "eval"] = "train"
    running_mean: list[float] | None = None
    running_var: list[float] | None = None
    momentum: float = Field(default=0.1, ge=0, le=1)
    norm: Literal["batch", "layer", "instance", "group"] = "batch"
    groups: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check_params(self) -> ExplainRequest:
        c = self.channels
        for name in ("gamma", "beta", "running_mean", "running_var"):
            v = getattr(self, name)
            if v is not None and len(v) != c:
                raise ValueError(
                    f"{name}: expected {_count(c, 'value')}, one per channel (got {len(v)})"
                )
            _finite(name, v)
        if self.running_var is not None and any(v < 0 for v in self.running_var):
            raise ValueError("running_var: variances must be ≥ 0")
        if self.norm == "instance" and len(self.shape) == 2:
            raise ValueError(
                "norm: instance norm needs (N, C, H, W); an (N, F) input has no H×W to average over"
            )
        if self.norm == "group" and c % self.groups:
            raise ValueError(f"groups: must divide the {_count(c, 'channel')} (got {self.groups})")
        if self.norm != "batch" and self.mode == "eval":
            raise ValueError("mode: eval (running statistics) applies to batch norm only")
        if self.mode == "train" and self.norm == "batch" and math.prod(self.shape) // c < 2:
            raise ValueError("shape: batch norm in training needs more than 1 value per channel")
        return self


class StepRequest(BaseModel):
    """Feed one more random batch (torch.rand, seeded by seed + step) in train mode."""

    model_config = ConfigDict(extra="forbid")

    shape: list[int] = Field(default=[2, 2, 2, 2], min_length=2, max_length=4)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    step: int = Field(default=0, ge=0, le=10**6)
    running_mean: list[float]
    running_var: list[float]
    momentum: float = Field(default=0.1, gt=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> StepRequest:
        if len(self.shape) == 3 or any(d < 1 for d in self.shape):
            raise ValueError(
                f"shape: expected (N, F) or (N, C, H, W) of sizes ≥ 1 (got {self.shape})"
            )
        if math.prod(self.shape) > MAX_ELEMENTS:
            raise ValueError(f"shape: at most {MAX_ELEMENTS} elements")
        if math.prod(self.shape) // self.shape[1] < 2:
            raise ValueError("shape: a training batch needs more than 1 value per channel")
        c = self.shape[1]
        for name in ("running_mean", "running_var"):
            v = getattr(self, name)
            if len(v) != c:
                raise ValueError(
                    f"{name}: expected {_count(c, 'value')}, one per channel (got {len(v)})"
                )
            _finite(name, v)
        if any(v < 0 for v in self.running_var):
            raise ValueError("running_var: variances must be ≥ 0")
        return self
