"""The source document's examples, built exactly as it builds them, each computed live.

Every example is a :class:`Section`: the source's code, what it prints (computed now), the
traces of the real bnlab code path, the figures to draw, and checks against ``torch.nn``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import BNValueError
from ..nn import BatchNorm2d
from ..stats import NORMALIZATIONS, Stats, combine, reduce
from .lang import Say, plural, say
from .norms import explain_norm
from .trace import Trace, explain

SEED_GAMMA = (2.0, 5.0)
SEED_BETA = (3.0, 8.0)


@dataclass
class Check:
    """One computed step compared with torch: ``what`` vs ``against``, max |Δ| and tolerance."""

    what: str
    against: str
    max_abs_diff: float
    tolerance: float = 1e-5

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def line(self, lang: str = "en") -> str:
        if lang == "zh":
            verdict = "一致" if self.ok else "不一致"
            what, against = say(self.what, lang), say(self.against, lang)
            return f"{what} 与 {against} {verdict}：最大 |Δ| = {self.max_abs_diff:.1e}"
        verdict = "matches" if self.ok else "DIFFERS from"
        return f"{self.what} {verdict} {self.against}: max |Δ| = {self.max_abs_diff:.1e}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "against": self.against,
            "max_abs_diff": self.max_abs_diff,
            "ok": self.ok,
        }


def checks_summary(checks: list[Check], what: str = "torch") -> str:
    """One line for a figure's foot: do all checks pass, against what, and the largest |Δ|."""
    if not checks:
        return ""
    worst = max(c.max_abs_diff for c in checks)
    bad = [c for c in checks if not c.ok]
    if bad:
        return f"✗ {len(bad)} of {len(checks)} steps DIFFER from {what} (max |Δ| = {worst:.1e})"
    return f"✓ all {len(checks)} steps match {what}: max |Δ| = {worst:.1e}"


@dataclass
class FigureSpec:
    """A figure to draw: a caption and a factory returning a matplotlib Figure."""

    key: str
    caption: str
    factory: Callable[[], Any]


@dataclass
class Section:
    key: str
    title: str
    title_zh: str
    intro: str
    code: str = ""  # runs exactly as shown (a test executes it): Python, or shell lines
    code_lang: str = "python"  # "python" or "shell"
    printed: list[str] = field(default_factory=list)
    source_printed: list[str] = field(default_factory=list)
    traces: dict[str, Trace] = field(default_factory=dict)
    figures: list[FigureSpec] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    show_traces: bool = True  # False where another section already tabulates the same tensor
    exercises: list[Any] = field(default_factory=list)  # exercises.Exercise: question + link
    # pages the tour writes beside index.html and links: (label, name under the tour folder,
    # the file to copy there)
    pages: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def matches_source(self) -> bool:
        """What this section prints now equals what the source printed (labels aside)."""
        return [p.split(":\n")[-1] for p in self.printed] == self.source_printed


def _diff(a: Tensor, b: Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).abs().max()) if a.numel() else 0.0


def _size(t: Tensor | torch.Size | tuple[int, ...]) -> str:
    shape = t.shape if isinstance(t, Tensor) else t
    return str(torch.Size(list(shape)))


def torch_module_name(x: Tensor) -> str:
    """The torch module that normalizes an input of this rank: BatchNorm1d, 2d or 3d."""
    return {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}[x.dim()]


def _torch_bn(
    x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None, momentum: float = 0.1
) -> tuple[Tensor, torch.nn.Module]:
    """torch.nn.BatchNorm1d/2d/3d after one training step: the oracle for a trace."""
    bn = getattr(torch.nn, torch_module_name(x))(x.shape[1], momentum=momentum, dtype=x.dtype)
    with torch.no_grad():
        if weight is not None:
            bn.weight.copy_(weight)
        if bias is not None:
            bn.bias.copy_(bias)
        return bn(x), bn


def trace_checks(trace: Trace, label: str) -> list[Check]:
    """Each computed step of a training trace against torch: μ, σ², x̂, y, running statistics.

    The running statistics are checked when the trace started from a fresh module's buffers
    (zeros and ones), as ``explain`` does by default.
    """
    x = trace.input
    axes = (0, *range(2, x.dim()))
    mod = f"torch.nn.{torch_module_name(x)}"
    y_ref, bn = _torch_bn(x, trace.weight, trace.bias, trace.momentum)
    xhat_ref, _ = _torch_bn(x)  # γ = 1, β = 0: torch's own x̂ (dividing y by γ fails at γ = 0)
    checks = [
        Check(f"{label} μ_B", "torch.mean", _diff(trace["mean"].value, x.mean(dim=axes))),
        Check(
            f"{label} σ²_B",
            "torch.var(unbiased=False)",
            _diff(trace["var"].value, x.var(dim=axes, unbiased=False)),
        ),
        Check(f"{label} x̂", f"{mod} (γ=1, β=0)", _diff(trace["xhat"].value, xhat_ref), 1e-4),
        Check(f"{label} y", mod, _diff(trace.output, y_ref)),
    ]
    fresh = trace.meta.get("running_before") == {
        "running_mean": [0.0] * trace.channels,
        "running_var": [1.0] * trace.channels,
    }
    if fresh and "running_mean" in trace and "running_var" in trace:
        for name in ("running_mean", "running_var"):
            ours = trace[name].value
            checks.append(Check(f"{label} {name}", f"{mod}.{name}", _diff(ours, getattr(bn, name))))
    return checks


# --- the examples ---------------------------------------------------------------------------


def seed_fc() -> Section:
    """Fully connected: X_fc = torch.rand(10, 256), statistics per feature over the batch."""
    batch_size = 10
    torch.manual_seed(0)
    X_fc = torch.rand(batch_size, 256)
    trace = explain(X_fc)
    centred = trace["x_minus_mean"].value
    printed = [
        _size(X_fc),
        _size(trace["mean"].value),
        _size(centred),
        _size(centred.square()),
        _size(trace["var"].value),
    ]
    sec = Section(
        "seed-fc",
        "Batch norm for a fully connected layer",
        "对全连接层做批量归一化",
        Say(
            "Input and output are (batch_size, n_feature). Each feature (column) gets its own "
            "mean and variance over the batch (dim 0): mean = X.mean(dim=0), "
            "var = ((X - mean) ** 2).mean(dim=0).",
            "输入和输出的形状都是 (batch_size, n_feature)。每个特征（每一列）在小批量上（dim 0）"
            "各有自己的均值和方差：mean = X.mean(dim=0)，var = ((X - mean) ** 2).mean(dim=0)。",
        ),
        code=(
            "import torch\n\n"
            "batch_size = 10\ntorch.manual_seed(0)\nX_fc = torch.rand(batch_size,256)\n"
            "print(X_fc.size())\nmean = X_fc.mean(dim=0)\nprint(mean.size())\n"
            "print((X_fc-mean).size())\nprint(((X_fc-mean)**2).size())\n"
            "print(((X_fc-mean)**2).mean(dim=0).size())"
        ),
        printed=printed,
        source_printed=[
            "torch.Size([10, 256])",
            "torch.Size([256])",
            "torch.Size([10, 256])",
            "torch.Size([10, 256])",
            "torch.Size([256])",
        ],
        traces={"fc": trace},
        checks=trace_checks(trace, "X_fc"),
    )
    return sec


def seed_conv() -> Section:
    """Convolutional: chained keepdim means over dims 0, 2, 3, and why variance can't chain."""
    batch_size, n_channel, p, q = 2, 2, 2, 2
    torch.manual_seed(0)
    X_cov = torch.rand(batch_size, n_channel, p, q)
    m0 = X_cov.mean(dim=0, keepdim=True)
    m02 = m0.mean(dim=2, keepdim=True)
    m023 = m02.mean(dim=3, keepdim=True)
    trace = explain(X_cov)
    at_once = X_cov.mean(dim=(0, 2, 3), keepdim=True)
    printed = [_size(X_cov), str(len(X_cov.shape) in (2, 4)), _size(m0), _size(m02), _size(m023)]
    # Variance does not chain: the variance of per-slice variances is not a variance, and even
    # the mean of per-slice variances misses the spread *between* the slices' means.
    v0 = X_cov.var(dim=0, keepdim=True, unbiased=False)
    naive = v0.var(dim=2, keepdim=True, unbiased=False).var(dim=3, keepdim=True, unbiased=False)
    mean_of_vars = v0.mean(dim=(2, 3))
    truth = X_cov.var(dim=(0, 2, 3), unbiased=False)
    # move 2 does it right: each (h, w) position is a shard of N values; Chan's merge combines them
    shards = [reduce(X_cov[:, :, h : h + 1, w : w + 1]) for h in range(p) for w in range(q)]
    merged: Stats = combine(shards)
    naive_v = [round(v, 6) for v in naive.flatten().tolist()]
    slice_v = [round(v, 6) for v in mean_of_vars.flatten().tolist()]
    true_v = [round(v, 6) for v in truth.tolist()]
    sec = Section(
        "seed-conv",
        "Batch norm for a convolutional layer",
        "对卷积层做批量归一化",
        Say(
            "Input and output are (batch_size, n_channel, p, q). Each channel gets one mean and "
            "variance over the batch, height and width; keepdim=True keeps the shape (1, C, 1, 1) "
            "so the statistics broadcast back over X.",
            "输入和输出的形状都是 (batch_size, n_channel, p, q)。每个通道在小批量、高和宽上求一个"
            "均值和一个方差；keepdim=True 保留形状 (1, C, 1, 1)，统计量才能广播回 X 上。",
        ),
        code=(
            "import torch\n\nbatch_size, n_channel, p, q = 2, 2, 2, 2\n"
            "torch.manual_seed(0)\nX_cov = torch.rand(batch_size,n_channel,p,q)\n"
            'print(X_cov.size())\nif len(X_cov.shape) in (2, 4):\n    print("True")\n'
            "print(X_cov.mean(dim=0, keepdim=True).size())\n"
            "print(X_cov.mean(dim=0, keepdim=True).mean(dim=2, keepdim=True).size())\n"
            "print(X_cov.mean(dim=0, keepdim=True).mean(dim=2, keepdim=True)"
            ".mean(dim=3, keepdim=True).size())"
        ),
        printed=printed,
        source_printed=[
            "torch.Size([2, 2, 2, 2])",
            "True",
            "torch.Size([1, 2, 2, 2])",
            "torch.Size([1, 2, 1, 2])",
            "torch.Size([1, 2, 1, 1])",
        ],
        traces={"conv": trace},
        show_traces=False,  # the same tensor is tabulated in full in "seed-illustrated"
        checks=[
            Check(
                Say("chained mean over dims 0, 2, 3", "沿维度 0、2、3 逐次求的均值"),
                "X.mean(dim=(0, 2, 3))",
                _diff(m023, at_once),
                1e-6,
            ),
            Check(
                Say("chained mean", "逐次求的均值"),
                Say("bnlab μ_B (one reduce)", "bnlab 的 μ_B（一次归约）"),
                _diff(m023.flatten(), trace["mean"].value),
                1e-6,
            ),
            Check(
                Say(
                    "Chan's merge of the 4 (h, w) shards' σ²",
                    "用 Chan 公式合并 4 个 (h, w) 分片的 σ²",
                ),
                "torch.var(dim=(0, 2, 3))",
                _diff(merged.var, truth),
                1e-6,
            ),
            *trace_checks(trace, "X_cov"),
        ],
        notes=[
            Say(
                "The mean chains because every link averages equally many values: a mean of "
                "means is the mean.",
                "均值可以逐次求，因为每一步平均的值一样多：均值的均值就是均值。",
            ),
            Say(
                "The variance does not chain. Chaining .var() gives "
                f"{naive_v}, and even averaging the per-slice variances gives {slice_v}, but the "
                f"channel variances are {true_v}: the spread between the slices' means is lost. "
                "The book's chained formula works only because it squares the deviations from "
                "the full mean first; merging (count, mean, M2) with Chan's formula (bnlab's "
                "combine move) gets it right from the shards alone.",
                f"方差不能逐次求。逐次调用 .var() 得到 {naive_v}，即使把各切片的方差取平均也只得到 "
                f"{slice_v}，而各通道真正的方差是 {true_v}：切片均值之间的差异丢掉了。书里逐次求的"
                "公式之所以对，是因为它先对相对整体均值的偏差求平方；用 Chan 公式合并各分片的"
                "（数量, 均值, M2）（bnlab 的合并一步）只靠分片本身就能得到正确结果。",
            ),
        ],
        data={
            "chain_shapes": [list(m0.shape), list(m02.shape), list(m023.shape)],
            "naive_chained_var": naive.flatten().tolist(),
            "mean_of_slice_vars": mean_of_vars.flatten().tolist(),
            "true_var": truth.tolist(),
            "merged_var": merged.var.tolist(),
        },
    )
    return sec


def mean_dims() -> Section:
    """How mean(dim) works on a 4 × 3 tensor (rows = batch, columns = features)."""
    x = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    mean0 = x.mean(dim=0, keepdim=True)
    mean1 = x.mean(dim=1, keepdim=True)
    mean_all = x.mean()
    by_reduce0 = reduce(x, axes=(0,)).mean
    by_reduce1 = reduce(x, axes=(1,)).mean
    sec = Section(
        "mean-dims",
        "How mean(dim) works",
        "均值方差计算公式: mean() 函数的参数",
        Say(
            "dim=0 averages down each column (one value per feature, shape (1, columns)); dim=1 "
            "averages along each row (one value per sample, shape (rows, 1)); no dim averages "
            "every element.",
            "dim=0 沿每一列向下求平均（每个特征一个值，形状 (1, 列数)）；dim=1 沿每一行求平均"
            "（每个样本一个值，形状 (行数, 1)）；不给 dim 则对全部元素求平均。",
        ),
        code="import torch\n\nx = torch.arange(12.).reshape(4, 3)\n"
        "print(x.mean(dim=0, keepdim=True))\nprint(x.mean(dim=1, keepdim=True))\nprint(x.mean())",
        printed=[  # !s: format() of a 0-d tensor gives its bare item ("5.5"), not "tensor(5.5000)"
            f"x:\n{x!s}",
            f"x_mean0:\n{mean0!s}",
            f"x_mean1:\n{mean1!s}",
            f"x_mean:\n{mean_all!s}",
        ],
        source_printed=[
            "tensor([[ 0.,  1.,  2.],\n        [ 3.,  4.,  5.],\n        [ 6.,  7.,  8.],\n"
            "        [ 9., 10., 11.]])",
            "tensor([[4.5000, 5.5000, 6.5000]])",
            "tensor([[ 1.],\n        [ 4.],\n        [ 7.],\n        [10.]])",
            "tensor(5.5000)",
        ],
        figures=[
            FigureSpec(
                "mean-dims",
                "mean over dim=0, dim=1 and all elements",
                lambda: _figures().mean_dims_figure(x),
            )
        ],
        checks=[
            Check(
                Say("bnlab reduce over dim 0", "bnlab 沿维度 0 归约"),
                "x.mean(dim=0)",
                _diff(by_reduce0, mean0.flatten()),
                0,
            ),
            Check(
                Say("bnlab reduce over dim 1", "bnlab 沿维度 1 归约"),
                "x.mean(dim=1)",
                _diff(by_reduce1, mean1.flatten()),
                0,
            ),
        ],
        data={"dim0": mean0.tolist(), "dim1": mean1.tolist(), "all": mean_all.item()},
    )
    return sec


def why() -> Section:
    return Section(
        "why",
        "Why batch normalization",
        "《动手学深度学习Pytorch版》之批量归一化",
        Say(
            "In a deep network, even with standardized inputs, every parameter update shifts the "
            "outputs of the layers near the output sharply. During training, batch normalization "
            "uses the mean and standard deviation of the current mini-batch to keep re-centring "
            "and re-scaling the intermediate outputs, so that they stay numerically stable. "
            "(对深层神经网络来说,即使输入数据已做标准化,训练中模型参数的更新依然很容易造成靠近"
            "输出层输出的剧烈变化。)",
            "对深层神经网络来说，即使输入数据已做标准化，训练中模型参数的更新依然很容易造成靠近"
            "输出层输出的剧烈变化。批量归一化在训练时利用小批量上的均值和标准差，不断调整网络的"
            "中间输出，使整个神经网络在各层的中间输出的数值更稳定。",
        ),
    )


def formulas() -> Section:
    return Section(
        "formulas",
        "The formulas",
        "批量归一化方差均值计算",
        Say(
            "Over a mini-batch B of m values of one channel: the mean, the (biased) variance, the "
            "normalized value and the scaled-and-shifted output. ε keeps the division safe when "
            "σ²_B = 0. During training, running averages of μ_B and σ²_B are kept for prediction.",
            "在一个通道的小批量 B（共 m 个值）上：均值、（有偏的）方差、标准化后的值，以及经过"
            "拉伸参数 γ 和偏移参数 β 变换的输出。σ²_B = 0 时 ε 保证除法安全。训练时还会保存"
            "μ_B 和 σ²_B 的移动平均，供预测时使用。",
        ),
        printed=[
            "μ_B = (1/m) Σ_i x_i",
            "σ²_B = (1/m) Σ_i (x_i − μ_B)²",
            "x̂_i = (x_i − μ_B) / √(σ²_B + ε)",
            "y_i = γ·x̂_i + β",
        ],
    )


def seed_illustrated() -> Section:
    """The (2, 2, 2, 2) batch with γ = (2, 5), β = (3, 8): step 1 statistics, step 2 affine."""
    torch.manual_seed(0)
    X = torch.rand(2, 2, 2, 2)
    trace = explain(X, list(SEED_GAMMA), list(SEED_BETA))
    figs = _figures
    sec = Section(
        "seed-illustrated",
        "Batch norm, illustrated",
        "批量归一化图解",
        Say(
            "A batch of shape (2, 2, 2, 2): 2 samples, 2 channels (depths), each 2 × 2. Step 1: "
            "per channel, the mean and variance over batch, height and width (shape "
            "[1, 2, 1, 1]). Step 2: each channel has its own γ and β — the first channel (c = 0): "
            "γ = 2, β = 3; the second (c = 1): γ = 5, β = 8 — and the output is γ·x̂ + β, "
            "channel by channel.",
            "一个形状为 (2, 2, 2, 2) 的小批量：2 个样本，2 个通道（深度），每个 2 × 2。第 1 步："
            "按通道在小批量、高和宽上求均值和方差（形状 [1, 2, 1, 1]）。第 2 步：每个通道有自己的"
            "拉伸参数 γ 和偏移参数 β——第一个通道（c = 0）：γ = 2，β = 3；第二个通道（c = 1）："
            "γ = 5，β = 8——输出逐通道地等于 γ·x̂ + β。",
        ),
        code="import torch\nfrom bnlab.explain import explain\n\n"
        "torch.manual_seed(0)\nX = torch.rand(2, 2, 2, 2)\n"
        "trace = explain(X, weight=[2, 5], bias=[3, 8])  # every step, as computed\n"
        "print(trace)",
        printed=[
            _size(X),
            Say("step 1: " + _size((1, 2, 1, 1)), "第 1 步：" + _size((1, 2, 1, 1))),
        ],
        traces={"illustrated": trace},
        figures=[
            FigureSpec(
                "illustrated-input",
                "the (2, 2, 2, 2) batch, one colour per channel",
                lambda: figs().tensor_figure(trace, "input"),
            ),
            FigureSpec(
                "illustrated-step1",
                "step 1: per-channel mean and variance",
                lambda: figs().stats_figure(trace),
            ),
            FigureSpec(
                "illustrated-broadcast",
                "the [1, 2, 1, 1] statistics broadcast over the (2, 2, 2, 2) batch",
                lambda: figs().broadcast_figure(trace),
            ),
            FigureSpec(
                "illustrated-xhat",
                "x̂ = (x − μ) / √(σ² + ε), cell by cell, per channel",
                lambda: figs().xhat_figure(trace),
            ),
            FigureSpec(
                "illustrated-step2",
                "step 2: y = γ·x̂ + β per channel",
                lambda: figs().affine_figure(trace),
            ),
            FigureSpec(
                "illustrated-overview",
                "x → μ, σ² → x̂ → y",
                lambda: figs().walkthrough_figure(trace),
            ),
        ],
        checks=trace_checks(trace, "X"),
    )
    return sec


PROBE_SHAPE = (2, 2, 2, 2)


def predict(steps: int = 60) -> Section:
    """Prediction-time BN: running statistics converge to the population's during training."""
    g = torch.Generator().manual_seed(0)
    pop_mean, pop_std = torch.tensor([3.0, -1.0]), torch.tensor([2.0, 0.5])
    shape = (16, 2, 4, 4)
    chan = (1, -1, 1, 1)

    def batch(size: tuple[int, ...] = shape) -> Tensor:
        return torch.randn(size, generator=g) * pop_std.reshape(chan) + pop_mean.reshape(chan)

    # the portable kernels, as every explanation uses: the printed digits are the same on
    # every machine, with the fused kernels built or not
    ours, theirs = BatchNorm2d(2, backend="torch"), torch.nn.BatchNorm2d(2)
    history_mean, history_var = [], []
    with torch.no_grad():
        for _ in range(steps):
            b = batch()
            ours(b)
            theirs(b)
            history_mean.append(ours.running_mean.tolist())
            history_var.append(ours.running_var.tolist())
        # a small new batch (8 values per channel): its own statistics are visibly noisy
        probe = batch(PROBE_SHAPE)
        # one story, one sequence of states: both traces start from the running statistics
        # after the 60 steps (explain works on copies, so the module itself does not move)
        y_train = explain(probe, running_mean=ours.running_mean, running_var=ours.running_var)
        ours.eval()
        theirs.eval()
        y_eval_mod = ours(probe)
        y_eval_ref = theirs(probe)
        eval_trace = explain(
            probe, running_mean=ours.running_mean, running_var=ours.running_var, training=False
        )
    figs = _figures
    rm, rv = ours.running_mean, ours.running_var
    rm_4, rv_4 = [round(v, 4) for v in rm.tolist()], [round(v, 4) for v in rv.tolist()]
    sec = Section(
        "predict",
        "Batch norm at prediction time",
        "预测时的批量归一化",
        Say(
            "During training each batch is normalized with its own mean and variance, and "
            "running averages (momentum 0.1) of them are kept. At prediction time (model.eval()) "
            "those running statistics normalize instead, so a prediction does not depend on which "
            "other examples share its batch. Here 2-channel batches from a population with means "
            f"(3, −1) and standard deviations (2, 0.5) are fed for {steps} steps.",
            "训练时，每个小批量用它自己的均值和方差做标准化，同时保存它们的移动平均（动量 0.1）。"
            "预测时（model.eval()）改用这些移动平均的统计量做标准化，于是一个预测不再取决于同一个"
            "小批量里还有哪些样本。这里从均值为 (3, −1)、标准差为 (2, 0.5) 的总体中抽取 2 个通道的"
            f"小批量，连续训练 {steps} 步。",
        ),
        code="import torch\nimport bnlab\n\n"
        "g = torch.Generator().manual_seed(0)\n"
        "mean, std = torch.tensor([3.0, -1.0]), torch.tensor([2.0, 0.5])\n\n"
        "def batch(*size):  # a batch from the population, channel by channel\n"
        "    return torch.randn(size, generator=g) * std.reshape(1, 2, 1, 1)"
        " + mean.reshape(1, 2, 1, 1)\n\n"
        "bn = bnlab.nn.BatchNorm2d(2)\n"
        f"for _ in range({steps}):\n"
        "    bn(batch(16, 2, 4, 4))  # training: batch statistics; running averages kept\n"
        "print(bn.running_mean, bn.running_var)\n"
        "bn.eval()\nprint(bn(batch(2, 2, 2, 2)))  # prediction: the running statistics",
        printed=[
            Say(
                f"after {steps} steps: running_mean = {rm_4}, running_var = {rv_4}",
                f"{steps} 步之后：running_mean = {rm_4}，running_var = {rv_4}",
            ),
            Say(
                f"population: mean = {pop_mean.tolist()}, var = {pop_std.square().tolist()}",
                f"总体：均值 = {pop_mean.tolist()}，方差 = {pop_std.square().tolist()}",
            ),
        ],
        traces={"train": y_train, "eval": eval_trace},
        figures=[
            FigureSpec(
                "predict-running",
                "running statistics converge to the population's",
                lambda: figs().running_figure(
                    list(range(1, steps + 1)),
                    history_mean,
                    history_var,
                    pop_mean.tolist(),
                    pop_std.square().tolist(),
                ),
            ),
            FigureSpec(
                "predict-train-eval",
                "one batch in train mode vs eval mode",
                lambda: figs().train_eval_figure(probe, y_train.output, eval_trace.output),
            ),
        ],
        checks=[
            Check(
                Say(f"running_mean after {steps} steps", f"{steps} 步之后的 running_mean"),
                "torch.nn.BatchNorm2d",
                _diff(rm, theirs.running_mean),
            ),
            Check(
                Say(f"running_var after {steps} steps", f"{steps} 步之后的 running_var"),
                "torch.nn.BatchNorm2d",
                _diff(rv, theirs.running_var),
            ),
            Check(
                Say("eval-mode output", "预测模式的输出"),
                "torch.nn.BatchNorm2d.eval()",
                _diff(y_eval_mod, y_eval_ref),
            ),
            Check(
                Say("explain (eval) output", "explain（预测模式）的输出"),
                "bnlab.nn.BatchNorm2d.eval()",
                _diff(eval_trace.output, y_eval_mod),
                0,
            ),
        ],
        notes=[
            Say(
                "Train mode: a new batch of 2 samples (8 values per channel) is normalized by its "
                "own statistics, so its output has mean 0 and variance 1 per channel exactly — "
                "whatever the batch happens to hold, and every output depends on the other "
                "samples in it.",
                "训练模式：一个新的小批量（2 个样本，每个通道 8 个值）用它自己的统计量做标准化，"
                "所以无论其中是什么数，输出在每个通道上的均值都恰好是 0、方差恰好是 1——而每个"
                "输出都取决于同一小批量里的其他样本。",
            ),
            Say(
                "Eval mode: the running statistics normalize it instead. Its output is not "
                "exactly mean 0 and variance 1, because 8 values' statistics differ from the "
                "population's by sampling noise; but each sample's output now depends on that "
                "sample alone, which is what a prediction needs.",
                "预测模式：改用移动平均的统计量做标准化。输出的均值和方差不再恰好是 0 和 1，"
                "因为 8 个值的统计量与总体的统计量之间有抽样误差；但现在每个样本的输出只取决于"
                "它自己，这正是预测所需要的。",
            ),
            Say(
                f"Both traces start from the running statistics after the {steps} steps above. "
                "In train mode the probe batch would move them one step further (the trace's "
                "last table: before → after); in eval mode they are used as they stand and "
                "nothing changes.",
                f"两个记录都从上面 {steps} 步之后的移动平均统计量出发。训练模式下，这个小批量"
                "会让它们再更新一步（记录最后一张表：之前 → 之后）；预测模式下直接使用它们，"
                "什么也不改变。",
            ),
        ],
        data={
            "history_mean": history_mean,
            "history_var": history_var,
            "population_mean": pop_mean.tolist(),
            "population_var": pop_std.square().tolist(),
        },
    )
    return sec


def axes(groups: int = 2) -> Section:
    """Batch, layer, instance and group norm: the same reduce move over different axes."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 2, 2, generator=g, dtype=torch.float64)
    eps = 1e-5

    # the same reduce move over each normalization's axes (batch norm: the real functional path)
    ours = {k: explain_norm(x, k, groups=groups, eps=eps).output for k in NORMALIZATIONS}
    theirs = {
        "batch": F.batch_norm(x, None, None, training=True, eps=eps),
        "layer": F.layer_norm(x, x.shape[1:], eps=eps),
        "instance": F.instance_norm(x, eps=eps),
        "group": F.group_norm(x, groups, eps=eps),
    }
    fn = {
        "batch": "batch_norm",
        "layer": "layer_norm",
        "instance": "instance_norm",
        "group": "group_norm",
    }
    per, c = x.shape[1] // groups, x.shape[1]
    shares = {
        "batch": Say(
            "one channel across every sample and position: axes (N, H, W)",
            "一个通道，跨所有样本和位置：维度 (N, H, W)",
        ),
        "layer": Say(
            "one sample across every channel and position: axes (C, H, W)",
            "一个样本，跨所有通道和位置：维度 (C, H, W)",
        ),
        "instance": Say(
            "one sample and one channel: axes (H, W)", "一个样本的一个通道：维度 (H, W)"
        ),
        "group": Say(
            f"one sample and one group of {plural(per, 'channel')} "
            f"(C = {c} in G = {plural(groups, 'group')}): axes (C/G, H, W)",
            f"一个样本的一组 {per} 个通道（C = {c} 分成 G = {groups} 组）：维度 (C/G, H, W)",
        ),
    }
    names_zh = {
        "batch": "批量归一化",
        "layer": "层归一化",
        "instance": "实例归一化",
        "group": "组归一化",
    }
    return Section(
        "axes",
        "Which elements share one mean and variance",
        "批量/层/实例/组归一化",
        Say(
            "Batch norm is one choice of axes for the reduce move. Layer, instance and group norm "
            "reduce over other axes of the N × C × (H·W) cube; bnlab computes all four with the "
            "same reduce and checks them against torch.",
            "批量归一化只是归约时选取维度的一种方式。层归一化、实例归一化和组归一化在 "
            "N × C × (H·W) 这个立方体的其他维度上归约；bnlab 用同一个归约计算这四种归一化，"
            "并与 torch 对照检查。",
        ),
        printed=[Say(f"{k:>8} norm: {v}", f"{names_zh[k]}：{v.zh}") for k, v in shares.items()],
        figures=[
            FigureSpec(
                "axes",
                "the shaded cells share one mean and variance",
                lambda: _figures().axes_figure(groups, channels=x.shape[1]),
            )
        ],
        checks=[
            Check(
                Say(f"{k} norm via bnlab reduce", f"{names_zh[k]}（bnlab 归约）"),
                f"torch.nn.functional.{fn[k]}",
                _diff(ours[k], theirs[k]),
                1e-10,
            )
            for k in ours
        ],
    )


def _figures() -> Any:
    from . import figures  # matplotlib only when a figure is drawn

    return figures


EXAMPLES: dict[str, Callable[[], Section]] = {
    "seed-fc": seed_fc,
    "seed-conv": seed_conv,
    "mean-dims": mean_dims,
    "seed-illustrated": seed_illustrated,
    "predict": predict,
    "axes": axes,
}

# The source's order: three cases (fc, conv, prediction), mean(dim), the formulas, the
# illustration; then the axes picture, which goes beyond the source.
TOUR_ORDER = (
    "why",
    "seed-fc",
    "seed-conv",
    "predict",
    "mean-dims",
    "formulas",
    "seed-illustrated",
    "axes",
    "experiments",
    "distributed",
)
# sections built from the committed runs and the real data rather than from the source: their
# numbers change when the runs do, so no golden file holds them
RESULT_SECTIONS = ("experiments", "distributed")


def build(name: str) -> Section:
    """The named example's section, computed now."""
    if name == "formulas":
        return formulas()
    if name == "why":
        return why()
    if name == "experiments":
        from .results import experiments_section

        return experiments_section()
    if name == "distributed":
        from .distributed import distributed_section

        return distributed_section()
    builder = EXAMPLES.get(name)  # look up first: a KeyError inside a builder is a real bug
    if builder is None:
        known = ", ".join(dict.fromkeys((*TOUR_ORDER, *EXAMPLES)))
        raise BNValueError(f"unknown example {name!r} (known: {known})")
    return builder()
