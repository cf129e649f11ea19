"""``bnlab.nn.SyncBatchNorm`` over gloo on 127.0.0.1: 2 and 3 real processes against one.

Each test starts WORLD processes (``tests/nn/sync_worker.py``) on a free loopback port, with a
bounded time; each rank saves what it computed, and the test compares it with single-process
``torch.nn.BatchNorm*d`` on the concatenated global batch, in float64.
"""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import bnlab.nn as bnn
from tests.nn.sync_worker import _global_batch, sizes_for

ROOT = Path(__file__).resolve().parents[2]
D = torch.float64
TOL = 1e-10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(world: int, case: str, tmp_path: Path, limit: float = 120.0) -> list[dict]:
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.nn.sync_worker", str(r), str(world), str(port), case,
             str(tmp_path)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for r in range(world)
    ]
    start = time.monotonic()
    try:
        for p in procs:
            p.wait(timeout=max(1.0, limit - (time.monotonic() - start)))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for r, p in enumerate(procs):
        assert p.returncode == 0 or case == "kill", f"rank {r}: {p.stderr.read()[-2000:]}"
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(world) if case != "kill" or r == 0]


def _reference(case: str, world: int, tail: tuple[int, ...]) -> dict:
    sizes = sizes_for(case, world)
    x = _global_batch((sum(sizes), *tail)).requires_grad_()
    bn = (nn.BatchNorm1d if len(tail) == 1 else nn.BatchNorm2d)(3).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, 2.0, -1.0], dtype=D))
        bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3], dtype=D))
    g = torch.Generator().manual_seed(1)
    dy = torch.randn(x.shape, generator=g, dtype=D)
    y = bn(x)
    y.backward(dy)
    return {"sizes": sizes, "y": y.detach(), "dx": x.grad, "dw": bn.weight.grad,
            "db": bn.bias.grad, "rm": bn.running_mean, "rv": bn.running_var}  # fmt: skip


@pytest.mark.parametrize(
    ("world", "case"),
    [(2, "equal"), (2, "unequal"), (2, "empty"), (3, "unequal"), (3, "empty")],
)
def test_every_rank_matches_one_process_on_the_global_batch(world, case, tmp_path):
    ranks = _spawn(world, case, tmp_path)
    for tail, name in (((3,), "2d"), ((3, 5, 4), "4d")):
        ref = _reference(case, world, tail)
        starts = [sum(ref["sizes"][:r]) for r in range(world)]
        for r, got in enumerate(ranks):
            part = slice(starts[r], starts[r] + ref["sizes"][r])
            mine = got[name]
            torch.testing.assert_close(mine["y"], ref["y"][part], rtol=0, atol=TOL)
            torch.testing.assert_close(mine["dx"], ref["dx"][part], rtol=0, atol=TOL)
            torch.testing.assert_close(mine["rm"], ref["rm"], rtol=0, atol=TOL)
            torch.testing.assert_close(mine["rv"], ref["rv"], rtol=0, atol=TOL)
            assert mine["nbt"] == 1
        # γ and β: each rank's part of the sum, as torch's SyncBatchNorm gives DDP to reduce
        for k in ("dw", "db"):
            total = sum(got[name][k] for got in ranks)
            torch.testing.assert_close(total, ref[k], rtol=0, atol=TOL)


def test_a_converted_lenet_trains_as_one_process(tmp_path):
    from bnlab.experiments.models import lenet_bn

    ranks = _spawn(2, "lenet", tmp_path)
    torch.manual_seed(0)
    ref = lenet_bn("bnlab").double()
    x = _global_batch((8, 1, 28, 28))
    out = ref(x)
    out.square().sum().backward()
    torch.testing.assert_close(torch.cat([r["out"] for r in ranks]), out.detach(), atol=1e-9,
                               rtol=0)  # fmt: skip
    for name, p in ref.named_parameters():  # summed over ranks, as DDP's all-reduce would
        torch.testing.assert_close(sum(r["grads"][name] for r in ranks), p.grad, atol=1e-8,
                                   rtol=1e-9)  # fmt: skip
    for name, b in ref.named_buffers():
        torch.testing.assert_close(ranks[0]["buffers"][name], b, atol=1e-10, rtol=0)
    assert "SyncBatchNorm" in ranks[0]["kinds"] and "BatchNorm2d" not in ranks[0]["kinds"]


def test_a_dead_peer_is_an_error_not_a_hang(tmp_path):
    start = time.monotonic()
    (rank0,) = _spawn(2, "kill", tmp_path, limit=60)
    assert "error" in rank0, rank0
    assert "a peer died or never reached this layer" in rank0["error"]
    assert time.monotonic() - start < 45


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("channels", "the ranks disagree on the number of channels (rank 0: 3, rank 1: 4)"),
        ("nan", "rank 1 computed NaN batch statistics"),
    ],
)
def test_mismatches_are_reported_on_every_rank(case, words, tmp_path):
    ranks = _spawn(2, case, tmp_path)
    assert all(words in r.get("error", "") for r in ranks), ranks


def test_without_a_process_group_it_is_ordinary_batch_norm():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 4, 4, dtype=D)
    ours, theirs = bnn.SyncBatchNorm(3).double(), nn.BatchNorm2d(3).double()
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=TOL)
    torch.testing.assert_close(ours.running_var, theirs.running_var, rtol=0, atol=TOL)
    assert isinstance(ours, nn.SyncBatchNorm)
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=TOL)


def test_convert_round_trips_a_lenet_sharing_its_tensors():
    from bnlab.experiments.models import lenet_bn

    model = lenet_bn("torch")
    lenet_copy = copy.deepcopy(model)
    weights = {n: p for n, p in model.named_parameters()}
    converted = bnn.SyncBatchNorm.convert_sync_batchnorm(model)
    kinds = {type(m) for m in converted.modules()}
    assert bnn.SyncBatchNorm in kinds
    assert nn.BatchNorm2d not in kinds and nn.BatchNorm1d not in kinds
    assert all(p is weights[n] for n, p in converted.named_parameters())
    # and the converted model normalizes as the original (no process group: local BN)
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(converted.eval()(x), lenet_copy.eval()(x))
