"""The source document's illustrated example through bnlab and torch, side by side.

A (2, 2, 2, 2) batch — 2 samples, 2 channels, 2×2 each — built exactly as the source builds it
(``torch.manual_seed(0)``, ``torch.rand(2, 2, 2, 2)``), normalized per channel with γ = (2, 5) and
β = (3, 8) by ``bnlab.nn.BatchNorm2d`` and by ``torch.nn.BatchNorm2d``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from rich.console import Console
from rich.table import Table

from .nn import BatchNorm2d
from .stats import reduce

GAMMA = (2.0, 5.0)
BETA = (3.0, 8.0)


@dataclass
class DemoResult:
    x: torch.Tensor
    mean: torch.Tensor
    var: torch.Tensor
    ours: torch.Tensor
    theirs: torch.Tensor
    running_ours: tuple[torch.Tensor, torch.Tensor]
    running_theirs: tuple[torch.Tensor, torch.Tensor]

    @property
    def max_abs_diff(self) -> float:
        return float((self.ours - self.theirs).abs().max())

    @property
    def max_rel_diff(self) -> float:
        """max |Δ| relative to the largest |y| (float32 parity is ≤ 1e-5 in this sense)."""
        return self.max_abs_diff / max(1.0, float(self.theirs.abs().max()))

    @property
    def matches(self) -> bool:
        return self.max_rel_diff <= 1e-5


def seed_batch() -> torch.Tensor:
    """The source's tensor: ``torch.manual_seed(0); torch.rand(2, 2, 2, 2)``."""
    torch.manual_seed(0)
    return torch.rand(2, 2, 2, 2)


def run() -> DemoResult:
    x = seed_batch()
    ours, theirs = BatchNorm2d(2), torch.nn.BatchNorm2d(2)
    with torch.no_grad():
        for m in (ours, theirs):
            m.weight.copy_(torch.tensor(GAMMA))
            m.bias.copy_(torch.tensor(BETA))
    y_ours, y_theirs = ours(x).detach(), theirs(x).detach()
    stats = reduce(x)
    return DemoResult(
        x,
        stats.mean,
        stats.var,
        y_ours,
        y_theirs,
        (ours.running_mean.clone(), ours.running_var.clone()),
        (theirs.running_mean.clone(), theirs.running_var.clone()),
    )


def render(result: DemoResult, console: Console) -> None:
    x = result.x
    console.print("[bold]bnlab demo[/] — the source's (2, 2, 2, 2) batch, γ = (2, 5), β = (3, 8)")
    console.print(f"X = torch.rand(2, 2, 2, 2) after torch.manual_seed(0) → {x.size()}")
    stats = Table(title="Step 1: per-channel mean and variance (shape [1, 2, 1, 1])")
    for col in ("channel", "values (batch × H × W)", "μ_B", "σ²_B (biased)"):
        stats.add_column(col)
    for c in range(x.shape[1]):
        vals = ", ".join(f"{v:.4f}" for v in x[:, c].flatten().tolist())
        stats.add_row(str(c + 1), vals, f"{result.mean[c]:.6f}", f"{result.var[c]:.6f}")
    console.print(stats)
    out = Table(title="Step 2: y = γ·x̂ + β — bnlab.nn.BatchNorm2d next to torch.nn.BatchNorm2d")
    for col in ("n", "c", "h", "w", "x", "bnlab y", "torch y", "|Δ|"):
        out.add_column(col, justify="right")
    n_, c_, h_, w_ = x.shape
    for n in range(n_):
        for c in range(c_):
            for h in range(h_):
                for w in range(w_):
                    a, b = result.ours[n, c, h, w].item(), result.theirs[n, c, h, w].item()
                    out.add_row(
                        str(n),
                        str(c),
                        str(h),
                        str(w),
                        f"{x[n, c, h, w]:.4f}",
                        f"{a:.6f}",
                        f"{b:.6f}",
                        f"{abs(a - b):.1e}",
                    )
    console.print(out)
    (rm, rv), (tm, tv) = result.running_ours, result.running_theirs

    def fmt(t: torch.Tensor) -> str:
        return "(" + ", ".join(f"{v:.6f}" for v in t.tolist()) + ")"

    console.print(f"running_mean  bnlab {fmt(rm)}  torch {fmt(tm)}")
    console.print(f"running_var   bnlab {fmt(rv)}  torch {fmt(tv)}")
    verdict = "[green]matches[/]" if result.matches else "[red]DIFFERS from[/]"
    console.print(
        f"bnlab {verdict} torch.nn.BatchNorm2d: max |Δ| = {result.max_abs_diff:.1e} "
        f"(float32, {result.max_rel_diff:.0e} relative)"
    )


def main() -> int:
    result = run()
    render(result, Console())
    return 0 if result.matches else 1
