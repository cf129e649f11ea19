"""One rank of a SyncBatchNorm test: ``python -m tests.nn.sync_worker RANK WORLD PORT CASE OUT``.

Runs with gloo on 127.0.0.1, saves what it computed to OUT/rank{RANK}.pt for the test to
compare with single-process torch on the concatenated batch.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist

import bnlab.nn as bnn

D = torch.float64


def _global_batch(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=D) * 3 + 1


def sizes_for(case: str, world: int) -> list[int]:
    """Per-rank batch sizes of a case (the global batch is their sum)."""
    return {
        "equal": [4] * world,
        "unequal": [1, 5, 3][:world] if world == 3 else [2, 6],
        "empty": [0, 5, 3][:world] if world == 3 else [0, 6],
    }[case]


def run(rank: int, world: int, port: int, case: str, out: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
        timeout=timedelta(seconds=30),
    )  # fmt: skip
    torch.set_num_threads(1)
    result: dict = {}
    try:
        if case == "kill":
            if rank == 1:
                os._exit(0)  # this peer dies before the layer
            bn = bnn.SyncBatchNorm(3, timeout=5).double()
            try:
                bn(torch.randn(4, 3, dtype=D))
            except RuntimeError as e:
                result["error"] = str(e)
        elif case == "channels":
            c = 3 if rank == 0 else 4
            bn = bnn.SyncBatchNorm(c).double()
            try:
                bn(torch.randn(4, c, dtype=D))
            except RuntimeError as e:
                result["error"] = str(e)
        elif case == "nan":
            bn = bnn.SyncBatchNorm(3).double()
            x = torch.randn(4, 3, dtype=D)
            if rank == 1:
                x[0, 2] = float("nan")
            try:
                bn(x)
            except RuntimeError as e:
                result["error"] = str(e)
        elif case == "lenet":
            from bnlab.experiments.models import lenet_bn

            torch.manual_seed(0)
            model = bnn.SyncBatchNorm.convert_sync_batchnorm(lenet_bn("bnlab")).double()
            x = _global_batch((8, 1, 28, 28)).chunk(world)[rank]
            out_t = model(x)
            out_t.square().sum().backward()
            result["out"] = out_t.detach()
            result["grads"] = {n: p.grad.clone() for n, p in model.named_parameters()}
            result["buffers"] = {n: b.clone() for n, b in model.named_buffers()}
            result["kinds"] = sorted({type(m).__name__ for m in model.modules()})
        else:
            sizes = sizes_for(case, world)
            for shape_tail, name in (((3,), "2d"), ((3, 5, 4), "4d")):
                x_all = _global_batch((sum(sizes), *shape_tail))
                start = sum(sizes[:rank])
                x = x_all[start : start + sizes[rank]].clone().requires_grad_()
                bn = bnn.SyncBatchNorm(3).double()
                with torch.no_grad():
                    bn.weight.copy_(torch.tensor([0.5, 2.0, -1.0], dtype=D))
                    bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3], dtype=D))
                g = torch.Generator().manual_seed(1)
                dy_all = torch.randn(x_all.shape, generator=g, dtype=D)
                y = bn(x)
                y.backward(dy_all[start : start + sizes[rank]])
                result[name] = {
                    "y": y.detach(), "dx": x.grad, "dw": bn.weight.grad.clone(),
                    "db": bn.bias.grad.clone(), "rm": bn.running_mean.clone(),
                    "rv": bn.running_var.clone(), "nbt": int(bn.num_batches_tracked),
                }  # fmt: skip
    finally:
        torch.save(result, os.path.join(out, f"rank{rank}.pt"))
        if case != "kill":
            dist.destroy_process_group()


if __name__ == "__main__":
    rank, world, port = (int(a) for a in sys.argv[1:4])
    run(rank, world, port, sys.argv[4], sys.argv[5])
