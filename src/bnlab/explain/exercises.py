"""The tour's last section: what was shown and checked, and exercises in the book's spirit.

Each exercise links into the explorer (``bnlab serve``) in exactly the state it asks about: the
explorer keeps its whole state in the URL (shape, seed, γ, β, ε, mode, norm, groups, pinned
cell, language), so a link is a reproducible starting point.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from .examples import Section
from .lang import Say

EXPLORER = "http://127.0.0.1:8000/"  # where `bnlab serve` listens by default
SEED_STATE = {"shape": "2,2,2,2", "seed": "0", "gamma": "2,5", "beta": "3,8"}


@dataclass
class Exercise:
    """A question, and the explorer state to try it in."""

    question: Say
    state: dict[str, str]

    def url(self, lang: str = "en") -> str:
        return explorer_link(lang=lang, **self.state)


def explorer_link(lang: str = "en", **state: str) -> str:
    """A link that opens the explorer in ``state`` (the source's example by default)."""
    params = {**SEED_STATE, **state, "lang": lang}
    return EXPLORER + "?" + urlencode(params, safe=",")


EXERCISES = [
    Exercise(
        Say(
            "Set N = 1 and H = W = 1, so that each channel holds a single value. Why must batch "
            "norm refuse to train on it — what would σ²_B and x̂ be?",
            "令 N = 1、H = W = 1，每个通道只剩一个值。为什么这时批量归一化不能训练——σ²_B 和 "
            "x̂ 会是多少？",
        ),
        {"shape": "1,2,1,1", "gamma": "2,5", "beta": "3,8"},
    ),
    Exercise(
        Say(
            "Add the same number to every cell of channel 0, as a bias in the layer before BN "
            "would. Which steps change, and why does y not? That is why a convolution or linear "
            "layer followed by BN needs no bias.",
            "给通道 0 的每个格子加上同一个数，就像 BN 前面一层的偏置那样。哪些步骤变了，为什么 "
            "y 不变？这就是后面接 BN 的卷积层或全连接层不需要偏置的原因。",
        ),
        {"pin": "0,0,0,0"},
    ),
    Exercise(
        Say(
            "Switch to eval mode with a fresh module's running statistics (mean 0, variance 1). "
            "Why is the output no longer of mean 0 and variance 1 in each channel?",
            "切换到预测模式，用新模块的移动平均统计量（均值 0、方差 1）。为什么输出在每个通道上"
            "的均值和方差不再是 0 和 1？",
        ),
        {"mode": "eval"},
    ),
    Exercise(
        Say(
            "Set ε = 1. How far is the variance of x̂ from 1 now, and in which channel most?",
            "令 ε = 1。现在 x̂ 的方差离 1 有多远？哪个通道偏得最多？",
        ),
        {"eps": "1"},
    ),
    Exercise(
        Say(
            "Group norm over 4 channels: which G makes it layer norm, and which instance norm?",
            "在 4 个通道上做组归一化：G 取多少时就是层归一化？取多少时就是实例归一化？",
        ),
        {"shape": "2,4,2,2", "gamma": "1,1,1,1", "beta": "0,0,0,0", "norm": "group", "groups": "2"},
    ),
    Exercise(
        Say(
            "Change one value of sample n = 1 and watch sample n = 0's output: it moves in train "
            "mode and not in eval mode. Why is that what a prediction needs?",
            "改变样本 n = 1 的一个值，观察样本 n = 0 的输出：训练模式下它会变，预测模式下不变。"
            "为什么预测正需要这样？",
        ),
        {"pin": "0,0,0,0", "mode": "train"},
    ),
]


def summary_section(sections: list[Section]) -> Section:
    """What the tour showed, how many of its steps matched torch, and the exercises."""
    checks = [c for s in sections for c in s.checks]
    passed = sum(c.ok for c in checks)
    failed = len(checks) - passed
    figures = sum(len(s.figures) for s in sections)
    shown_en = ", ".join(s.title for s in sections if s.key != "why")
    shown_zh = "、".join(s.title_zh for s in sections if s.key != "why")
    return Section(
        "summary",
        "What was shown, and exercises",
        "小结与练习",
        Say(
            f"This walkthrough computed {len(sections)} sections live — {shown_en} — drew "
            f"{figures} figures, and compared {len(checks)} computed steps with torch: "
            f"{passed} matched and {failed} differed. Try the exercises in the explorer "
            "(start it with bnlab serve): each link opens it in the state the question is about.",
            f"这次讲解现场计算了 {len(sections)} 节内容（{shown_zh}），画了 {figures} 幅图，"
            f"把 {len(checks)} 个计算步骤与 torch 对照：{passed} 个一致，{failed} 个不一致。"
            "在交互页面里做做练习吧（先运行 bnlab serve）："
            "每个链接都会把页面打开到题目所说的状态。",
        ),
        exercises=list(EXERCISES),
        data={"checks": len(checks), "passed": passed, "failed": failed, "figures": figures},
    )
