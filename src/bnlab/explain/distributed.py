"""The tour's section on several processes: local BN per rank against synced BN.

Its figure is computed live from the real Fashion-MNIST images through LeNet-BN's first
convolution: the global batch split among ranks, and each rank's statistics of the first BN
layer's input against the whole batch's.  Its numbers come from the committed runs in
docs/results/ddp/ (one process; two processes with synced BN; two with local BN).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .examples import Check, FigureSpec, Section
from .lang import Say
from .results import results_dir

RUNS = ("one process", "2 processes, synced BN", "2 processes, local BN")
RUN_DIRS = {"one process": "single", "2 processes, synced BN": "sync",
            "2 processes, local BN": "local"}  # fmt: skip
RUNS_ZH = {"one process": "单进程", "2 processes, synced BN": "2 个进程，同步 BN",
           "2 processes, local BN": "2 个进程，各自的 BN"}  # fmt: skip
PER_RANK = (2, 4, 8, 16, 32, 64, 128)


def rank_statistics(images: torch.Tensor) -> tuple[dict[int, list[float]], dict[int, list[float]]]:
    """Per-rank batch mean and variance of channel 0 of LeNet-BN's first BN input, relative to
    the whole batch's, for each per-rank batch size (the batch split into equal shards)."""
    from ..experiments.models import init_xavier, lenet_bn

    torch.manual_seed(0)
    model = lenet_bn("bnlab")
    init_xavier(model)
    with torch.no_grad():
        h = model[0](images)[:, 0]  # the first conv's output, channel 0: the BN's input
    mu, var = h.mean().item(), h.var(unbiased=False).item()
    mean_dev, var_ratio = {}, {}
    for b in PER_RANK:
        shards = h[: len(h) // b * b].reshape(-1, b, *h.shape[1:])
        means = shards.mean(dim=(1, 2, 3))
        variances = shards.var(dim=(1, 2, 3), unbiased=False)
        mean_dev[b] = ((means - mu) / var**0.5).tolist()
        var_ratio[b] = (variances / var).tolist()
    return mean_dev, var_ratio


def _runs(root: Path | None) -> dict[str, list[dict]]:
    found = {}
    for name in RUNS:
        path = root / "ddp" / RUN_DIRS[name] / "metrics.jsonl" if root else None
        if path is not None and path.is_file():
            found[name] = [json.loads(line) for line in path.read_text().splitlines() if line]
    return found


def distributed_section() -> Section:
    sec = Section(
        "distributed",
        "Batch norm over several processes: synced or local",
        "多进程上的批量归一化：同步还是各自为政",
        Say(
            "When training runs on several processes, each sees its own share of every batch. "
            "With local BN each process normalizes with the statistics of its share alone; "
            "with synced BN (bnlab.nn.SyncBatchNorm, which also runs on CPU) the processes "
            "combine their counts, means and squared deviations with Chan's formula, and every "
            "process normalizes with the statistics of the whole batch, as one process would.",
            "在多个进程上训练时，每个进程只看到每个小批量中属于自己的那一份。用各自的批量归一化"
            "时，每个进程只用自己那份数据的统计量做标准化；用同步的批量归一化（bnlab.nn."
            "SyncBatchNorm，也能在 CPU 上运行）时，各进程用 Chan 公式合并各自的计数、均值和离差"
            "平方和，每个进程都用整个小批量的统计量做标准化，和单进程时完全一样。",
        ),
        code="bnlab train lenet-bn --epochs 1 --out runs/ddp/single\n"
        "bnlab train lenet-bn --epochs 1 --nproc 2 --out runs/ddp/sync\n"
        "bnlab train lenet-bn --epochs 1 --nproc 2 --no-sync-bn --out runs/ddp/local",
        code_lang="shell",
    )
    try:
        from ..experiments.data import fashion_mnist, to_float

        images = to_float(fashion_mnist("train")[0][:4096])
    except Exception:  # no data here: the section says how to get it
        images = None
    if images is None:
        sec.notes.append(
            Say(
                "The figure needs the Fashion-MNIST images (make tour installs them).",
                "这幅图需要 Fashion-MNIST 图像（make tour 会安装它们）。",
            )
        )
    else:
        mean_dev, var_ratio = rank_statistics(images)
        from .figures.distributed import rank_stats_figure

        sec.figures.append(
            FigureSpec(
                "distributed-ranks",
                "each rank's batch statistics of LeNet-BN's first BN input, around the whole "
                "batch's, as the images per rank shrink",
                lambda: rank_stats_figure(mean_dev, var_ratio),
            )
        )
        spread = {b: float(torch.tensor(v).std()) for b, v in mean_dev.items()}
        sec.printed.append(
            Say(
                "spread of the per-rank batch mean, in σ: "
                + ", ".join(f"{b} images {spread[b]:.3f}" for b in PER_RANK),
                "每个进程的小批量均值的离散程度（σ）："
                + "，".join(f"{b} 张图像 {spread[b]:.3f}" for b in PER_RANK),
            )
        )
    runs = _runs(results_dir())
    for name, rows in runs.items():
        last = rows[-1]
        sec.printed.append(
            Say(
                f"{name:<24} epoch {last['epoch']}: train loss {last['train_loss']:.6f}, "
                f"test acc {last['test_acc']:.4f}",
                f"{RUNS_ZH[name]}，第 {last['epoch']} 轮：训练损失 {last['train_loss']:.6f}，"
                f"测试准确率 {last['test_acc']:.4f}",
            )
        )
    single = runs.get("one process")
    for name, tol in (("2 processes, synced BN", 1e-4), ("2 processes, local BN", None)):
        rows = runs.get(name)
        if single is None or rows is None or len(rows) != len(single):
            continue
        pairs = zip(rows, single, strict=True)
        diff = max(abs(a["train_loss"] - b["train_loss"]) for a, b in pairs)
        if tol is not None:
            sec.checks.append(
                Check(
                    Say(f"train loss, {name}", f"训练损失，{RUNS_ZH[name]}"),
                    Say("one process on the same global batches", "同样全局批量上的单进程"),
                    diff,
                    tol,
                )
            )
        else:
            acc = rows[-1]["test_acc"] - single[-1]["test_acc"]
            sec.printed.append(
                Say(
                    f"local BN moves the train loss by {diff:.4f} and the test accuracy by "
                    f"{acc:+.4f} from one process's",
                    f"各自的 BN 让训练损失与单进程相差 {diff:.4f}，测试准确率相差 {acc:+.4f}",
                )
            )
    if not runs:
        sec.notes.append(
            Say(
                "No committed multi-process runs were found (docs/results/ddp/): run the "
                "commands above.",
                "没有找到已提交的多进程训练结果（docs/results/ddp/）：请运行上面的命令。",
            )
        )
    return sec
