"""The tour's two languages: English, and Chinese in the source's and the textbook's words.

Text a learner reads is either a :class:`Say` — an English ``str`` that also carries its Chinese,
so code that treats it as a string keeps working and English output is unchanged — or one of
the renderers' fixed labels, looked up in :data:`LABELS`.  :func:`say` picks the language.  The
numbers are computed once, before any of this: both languages show the very same values.

Terms, as 《动手学深度学习》 uses them: 批量归一化 (batch normalization), 小批量 (mini-batch),
均值 / 方差 (mean / variance), 拉伸参数 γ (scale) and 偏移参数 β (shift), 移动平均 (running
average), 训练模式 / 预测模式 (train / eval), 通道 (channel), 样本 (sample), 归约 (reduce).
"""

from __future__ import annotations

from ..render.style import LANGS, check_lang  # noqa: F401  (the languages live with rendering)


class Say(str):
    """An English string that also knows its Chinese (``.zh``)."""

    zh: str

    def __new__(cls, en: str, zh: str) -> Say:
        obj = super().__new__(cls, en)
        obj.zh = zh
        return obj

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # copy and pickle keep both
        return (Say, (str(self), self.zh))


def say(text: str, lang: str) -> str:
    """``text`` in ``lang``: a Say's own Chinese, else a renderer label's, else the text itself."""
    if lang != "zh":
        return str(text)
    zh = getattr(text, "zh", None)
    if zh is not None:
        return zh
    return LABELS.get(str(text), str(text))


def plural(n: int, word: str, lang: str = "en") -> str:
    """``1 sample``, ``2 samples``; Chinese has no plural: ``2 个样本``."""
    if lang == "zh":
        return f"{n} 个{_NOUNS_ZH.get(word, word)}"
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


_NOUNS_ZH = {"sample": "样本", "channel": "通道", "group": "组", "value": "值", "step": "步"}

# The renderers' fixed labels (text.py, html.py, tour.py), English → Chinese.
LABELS: dict[str, str] = {
    "prints (computed now):": "输出（现在计算）：",
    "prints (computed now)": "输出（现在计算）",
    "identical to what the source printed": "与原文的输出完全相同",
    "the source printed:": "原文的输出：",
    "per-channel statistics": "每个通道的统计量",
    "steps": "计算步骤",
    "step": "步骤",
    "formula": "公式",
    "shape": "形状",
    "reduced dims": "归约的维度",
    "per element (channel by channel)": "逐元素（按通道）",
    "index": "下标",
    "after": "之后",
    "running_mean before": "running_mean 之前",
    "running_var before": "running_var 之前",
    "figure": "图",
    "trace": "记录",
    "contents": "目录",
    "running statistics": "移动平均的统计量",
    "training (batch statistics)": "训练模式（用小批量的统计量）",
    "eval (running statistics)": "预测模式（用移动平均的统计量）",
    "Batch normalization, step by step": "批量归一化的每一步",
}

# Step titles of a trace (bnlab.explain.trace), by step name; eval mode has its own for μ, σ².
STEP_TITLES_ZH = {
    "input": "输入 x",
    "mean": "按通道的均值",
    "var": "按通道的方差",
    "x_minus_mean": "中心化",
    "xhat": "标准化",
    "output": "拉伸和偏移",
    "running_mean": "更新均值的移动平均",
    "running_var": "更新方差的移动平均",
}
EVAL_STEP_TITLES_ZH = {
    "mean": "移动平均的均值（作 μ 用）",
    "var": "移动平均的方差（作 σ² 用）",
}


def step_title(name: str, title: str, training: bool, lang: str) -> str:
    """A trace step's title in ``lang``."""
    if lang != "zh":
        return title
    if not training and name in EVAL_STEP_TITLES_ZH:
        return EVAL_STEP_TITLES_ZH[name]
    return STEP_TITLES_ZH.get(name, title)


# Figure captions, by figure key (the figures' own labels carry their Chinese beside them).
CAPTIONS_ZH = {
    "mean-dims": "沿 dim=0、dim=1 和全部元素求均值",
    "illustrated-input": "(2, 2, 2, 2) 的小批量，每个通道一种颜色",
    "illustrated-step1": "第 1 步：按通道求均值和方差",
    "illustrated-step2": "第 2 步：按通道计算 y = γ·x̂ + β",
    "illustrated-broadcast": "[1, 2, 1, 1] 的统计量沿 N、H、W 广播到 (2, 2, 2, 2) 的小批量",
    "illustrated-xhat": "按通道逐元素标准化：x̂ = (x − μ) / √(σ² + ε)",
    "illustrated-overview": "一步一步：x → μ, σ² → x̂ → y",
    "predict-running": "移动平均的统计量收敛到总体的统计量",
    "predict-train-eval": "同一个小批量在训练模式和预测模式下的输出",
    "axes": "阴影部分的元素共用一个均值和一个方差",
    "experiments-curves": "有无批量归一化的 LeNet，逐轮的训练曲线",
    "experiments-fig1": "BN 论文图 1：某个 sigmoid 输入的 15/50/85 百分位数随训练的变化",
    "experiments-sweep": "不同学习率下的最终测试准确率",
    "distributed-ranks": "LeNet-BN 第一个批量归一化层的输入：每个进程的小批量统计量围绕整个批量的"
    "统计量，随每个进程的图像数减少而散开",
}


def caption(key: str, text: str, lang: str) -> str:
    """A figure's caption in ``lang``."""
    if lang != "zh":
        return str(text)
    return CAPTIONS_ZH.get(key) or say(text, lang)
