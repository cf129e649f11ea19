"""Layer, instance and group norm traced by the same reduce move, against torch.nn.functional."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bnlab.explain import explain
from bnlab.explain.norms import explain_norm, stat_shape

pytestmark = pytest.mark.usefixtures("every_backend")

W = [1.5, -2.0, 0.5, 3.0]
B = [0.0, 1.0, -1.0, 2.0]


def _torch(kind, x, w, b):
    if kind == "layer":  # bnlab's γ/β are per channel: broadcast them over C×H×W for torch
        y = F.layer_norm(x, x.shape[1:])
        return y * w.reshape(1, -1, 1, 1) + b.reshape(1, -1, 1, 1)
    if kind == "instance":
        return F.instance_norm(x, weight=w, bias=b)
    return F.group_norm(x, 2, w, b)


@pytest.mark.parametrize("kind", ["layer", "instance", "group"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16], ids=str)
def test_other_norms_match_torch_and_keep_the_dtype(kind, dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(3, 4, 2, 3, generator=g, dtype=torch.float64) * 2 + 1).to(dtype)
    t = explain_norm(x, kind, groups=2, weight=W, bias=B)
    assert t.output.dtype == dtype and t["xhat"].value.dtype == dtype
    assert tuple(t["mean"].value.shape) == stat_shape(kind, tuple(x.shape), 2)
    ref = _torch(
        kind, x.double(), torch.tensor(W, dtype=torch.float64), torch.tensor(B, dtype=torch.float64)
    )
    tol = 1e-10 if dtype == torch.float64 else 3e-2
    assert (t.output.double() - ref).abs().max() <= tol * max(1.0, ref.abs().max().item())
    assert "μ_B" not in t["mean"].formula  # not a mini-batch statistic


def test_nan_input_gives_a_trace_not_an_error():
    t = explain(torch.tensor([[float("nan"), 1.0], [2.0, 3.0]]))
    assert torch.isnan(t.output[:, 0]).all() and torch.isfinite(t.output[:, 1]).all()


def test_bad_norm_arguments():
    x = torch.rand(2, 4, 2, 2)
    with pytest.raises(ValueError, match="norm must be one of"):
        explain_norm(x, "weight")
    with pytest.raises(ValueError, match="groups dividing 4"):
        explain_norm(x, "group", groups=3)
    with pytest.raises(ValueError, match="eps must be positive"):
        explain_norm(x, "layer", eps=0)
