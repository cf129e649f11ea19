"""The tour's last section: the book's experiment and the BN paper's Figure 1, from committed runs.

Reads ``docs/results/`` (or ``$BNLAB_RESULTS``); the runs themselves come from ``bnlab train``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .examples import Check, FigureSpec, Section
from .lang import Say

LENETS = ("lenet-bn", "lenet-bn-torch", "lenet-bn-d2l", "lenet", "lenet-lr1")


HERE = Path(__file__).resolve()  # .../bnlab/explain/results.py
SOURCE_TREE = HERE.parents[3] / "docs" / "results"  # a checkout: src/bnlab/ → docs/results/
PACKAGED = HERE.parents[1] / "_results"  # a wheel: pyproject.toml ships the runs as bnlab/_results


def results_dir() -> Path | None:
    """Where the committed runs are, wherever bnlab is started and however it was installed.

    ``$BNLAB_RESULTS``, else docs/results beside the source tree (a checkout, an editable
    install), else the copy an installed wheel carries (bnlab/_results), else ./docs/results.
    """
    candidates = [
        os.environ.get("BNLAB_RESULTS"),
        SOURCE_TREE,
        PACKAGED,
        Path.cwd() / "docs" / "results",
    ]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


def experiments_section() -> Section:
    from ..experiments import compare

    sec = Section(
        "experiments",
        "The book's experiment: LeNet with and without BN",
        "在 Fashion-MNIST 上训练 LeNet:有无批量归一化",
        Say(
            "The chapter trains LeNet with BN after every convolutional and fully connected layer "
            "on Fashion-MNIST (10 epochs, batch 256, lr 1.0) and contrasts it with plain LeNet. "
            "These runs were made with bnlab train on the real data; the BN paper's Figure 1 (the "
            "input of a sigmoid through training, with and without BN) is redrawn from its §4.1 "
            "network.",
            "书中在 Fashion-MNIST 上训练每个卷积层和全连接层之后都加了批量归一化的 LeNet（10 个"
            "迭代周期，批量大小 256，学习率 1.0），并与不加批量归一化的 LeNet 对比。这些结果由 "
            "bnlab train 在真实数据上训练得到；BN 论文的图 1（训练过程中某个 sigmoid 的输入，"
            "有无批量归一化）按论文 §4.1 的网络重新画出。",
        ),
        code="bnlab train lenet-bn          # and lenet-bn-torch, lenet-bn-d2l, lenet, lenet-lr1\n"
        "bnlab train bn-paper-fig1\nbnlab train lr-sweep",
        code_lang="shell",
    )
    root = results_dir()
    found = [root / n for n in LENETS if root and (root / n / "metrics.jsonl").exists()]
    if not found:
        sec.notes.append(
            Say(
                "No committed runs were found (docs/results/): run the commands above.",
                "没有找到已提交的训练结果（docs/results/）：请运行上面的命令。",
            )
        )
        return sec
    runs, _ = compare.expand(found)
    for r in runs:
        f = r.final
        en = (
            f"{r.name:<15} epoch {f['epoch']:>2}: train loss {f['train_loss']:.3f}, "
            f"train acc {f['train_acc']:.3f}, test acc {f['test_acc']:.3f}"
            + (f", precise-BN {r.precise:.3f}" if r.precise is not None else "")
        )
        zh = (
            f"{r.name:<15} 第 {f['epoch']:>2} 轮：训练损失 {f['train_loss']:.3f}，"
            f"训练准确率 {f['train_acc']:.3f}，测试准确率 {f['test_acc']:.3f}"
            + (f"，重算统计量后 {r.precise:.3f}" if r.precise is not None else "")
        )
        sec.printed.append(Say(en, zh))
    sec.figures.append(
        FigureSpec(
            "experiments-curves",
            "LeNet with and without BN, per epoch",
            lambda: compare.curves_figure(runs),
        )
    )
    by = {r.name: r for r in runs}
    if "lenet-bn" in by and "lenet-bn-torch" in by:
        a, b = by["lenet-bn"].metrics, by["lenet-bn-torch"].metrics
        if len(a) == len(b):
            diff = max(abs(x["train_loss"] - y["train_loss"]) for x, y in zip(a, b, strict=True))
            sec.checks.append(
                Check(
                    Say(
                        "LeNet-BN trained with bnlab's BN, per-epoch train loss",
                        "用 bnlab 的批量归一化训练的 LeNet-BN，逐轮的训练损失",
                    ),
                    Say(
                        "the same run with torch.nn.BatchNorm2d/1d",
                        "用 torch.nn.BatchNorm2d/1d 的同一次训练",
                    ),
                    diff,
                    1e-4,
                )
            )
    _inspected(sec, root)
    fig1 = root / "bn-paper-fig1" if root else None
    if fig1 and fig1.is_dir():
        fruns, _ = compare.expand([fig1])
        if len(fruns) >= 2 and all(r.activations for r in fruns):
            sec.figures.append(
                FigureSpec(
                    "experiments-fig1",
                    "the BN paper's Figure 1(b, c): a sigmoid's input over training",
                    lambda: compare.bands_figure(fruns),
                )
            )
    sweep = root / "lr-sweep" if root else None
    if sweep and sweep.is_dir():
        sruns, _ = compare.expand([sweep])
        if len(compare.sweep_runs(sruns)) >= 2:
            sec.figures.append(
                FigureSpec(
                    "experiments-sweep",
                    "final test accuracy against lr",
                    lambda: compare.sweep_figure(sruns),
                )
            )
    return sec


def _inspected(sec: Section, root: Path | None) -> None:
    """The committed BN health checks (docs/results/inspect/): accuracy before and after
    recalibrating the running statistics, seed by seed, and where each report page is."""
    import json

    folder = root / "inspect" if root else None
    reports = sorted(folder.glob("*/report.json")) if folder and folder.is_dir() else []
    if not reports:
        return
    for path in reports:
        extra = json.loads(path.read_text(encoding="utf-8")).get("extra", {})
        before = extra.get("test accuracy, running statistics")
        after = extra.get("test accuracy after recalibrate")
        if before is None or after is None:
            continue
        run = path.parent.name
        page = path.parent / "report.html"
        if page.is_file():
            label = Say(f"The BN health check of {run}", f"{run} 的批量归一化体检")
            sec.pages.append((label, f"inspect/{run}.html", str(page)))
        sec.printed.append(
            Say(
                f"bnlab inspect {run}: test acc {before} with its running statistics, "
                f"{after} after recalibrate",
                f"bnlab inspect {run}：用移动平均的统计量测试准确率 {before}，"
                f"重算统计量后 {after}",
            )
        )
    sec.notes.append(
        Say(
            "The BN health check of each LeNet-BN run (bnlab inspect RUN_DIR: stale running "
            "statistics, the train/eval gap, dead channels, small batches, freezing) is a page "
            "of its own, linked below (in the repository: docs/results/inspect/).",
            "每个 LeNet-BN 训练结果的批量归一化体检（bnlab inspect RUN_DIR：移动平均是否过时、"
            "训练与预测模式的差距、失效通道、小批量、冻结）各有一页："
            "见下面的链接（仓库中：docs/results/inspect/）。",
        )
    )
