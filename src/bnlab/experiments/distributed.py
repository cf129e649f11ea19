"""A recipe on N processes: DistributedDataParallel, each rank on its shard of every global batch.

The N ranks take the global batches one process takes (the order of :func:`.train.epoch_seed`,
``batch_size`` rows each), and rank r trains on its contiguous part of each, rows
[r·b/N, (r+1)·b/N) (``torch.tensor_split``: the short last batch too, a rank may get none).
With BN synced (bnlab's :class:`~bnlab.nn.SyncBatchNorm`, the default) every layer normalizes
with the global batch's statistics, so the metrics and weights are one process's to float
tolerance; with local BN (``sync_bn=False``) each rank normalizes its own shard: BN over b/N
examples, another experiment.

Rank 0 alone touches the run's folder, and writes what one process would: it tests and runs
precise BN on a one-process copy of the model, gathers the whole batch's pre-activations for
activations.jsonl, and saves checkpoints a one-process run can load.  config.json also records
``nproc``, ``sync_bn`` and the backend (NCCL when there is a GPU for each local rank, gloo on
the CPU otherwise), and a resume must use the same ``nproc`` and ``sync_bn``.

Two ways in: :func:`train_distributed` (``bnlab train --nproc N``) starts N processes on
127.0.0.1 and reports a rank's failure as one :class:`RankFailed` naming it;
:func:`train_this_rank` is one of ``torchrun``'s processes (``torchrun --nproc_per_node N -m
bnlab train RECIPE``).  Every wait is bounded: a collective that waits longer than ``timeout``
seconds for its peers is an error, and the parent stops the other ranks once one has failed.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import io
import multiprocessing as mp
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from rich.console import Console
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..errors import BNLabError, BNValueError
from ..nn import D2LBatchNorm, SyncBatchNorm
from .recipes import Recipe
from .runfolder import Folder, TrainingInterrupted, saved_epoch, starting_state
from .train import Data, Ranks, RunResult, refuse_other_ranks, train

__all__ = [
    "TIMEOUT",
    "DDPRanks",
    "PeerLost",
    "RankFailed",
    "check_syncable",
    "train_distributed",
    "train_this_rank",
    "under_torchrun",
]

TIMEOUT = 600.0  # seconds a collective may wait for its peers, rank 0's testing and saving too
GRACE = 10.0  # seconds the other ranks get to stop on their own once one has failed
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")
# no buffer broadcast before each forward: synced BN keeps every rank's running statistics
# equal, and with local BN rank 0's own are the ones tested and saved (torch 2.13 renamed it)
_DDP_PARAMETERS = inspect.signature(DistributedDataParallel.__init__).parameters
_BUFFER_SYNC = (
    "forward_sync_buffers" if "forward_sync_buffers" in _DDP_PARAMETERS else "broadcast_buffers"
)


class RankFailed(BNLabError, RuntimeError):
    """A rank of :func:`train_distributed` failed; the message is one line naming it.

    ``rank`` is the rank whose failure came first (the others' followed from it), ``user``
    whether it was a mistake in the input (a :class:`~bnlab.errors.BNLabError`) rather than a
    crash.
    """

    def __init__(self, rank: int, message: str, user: bool) -> None:
        super().__init__(message)
        self.rank, self.user = rank, user


class PeerLost(BNLabError, RuntimeError):
    """A collective of the training loop failed or timed out: another rank stopped."""


def under_torchrun() -> bool:
    """Whether this process is one of torchrun's (its environment names the rank and group)."""
    return all(k in os.environ for k in TORCHRUN_ENV)


def backend_for(local_ranks: int) -> str:
    """NCCL when CUDA has a GPU for each of this machine's ranks, gloo (the CPU) otherwise."""
    cuda = torch.cuda.is_available() and torch.cuda.device_count() >= local_ranks
    return "nccl" if cuda else "gloo"


def check_syncable(recipe: Recipe, sync_bn: bool) -> None:
    """Refuse synced BN for a model whose BN layers have no synced version (the textbook's)."""
    if not sync_bn:
        return
    with torch.random.fork_rng(devices=[]):  # building initializes weights: leave the RNG be
        model = recipe.build_model()
    if any(isinstance(m, D2LBatchNorm) for m in model.modules()):
        raise BNValueError(
            f"--sync-bn: {recipe.name}'s batch norm is the textbook's D2LBatchNorm, which has no "
            "synced version; pass --no-sync-bn (BN over each process's shard) or use lenet-bn"
        )


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _wait(work: Any, what: str, timeout: float) -> None:
    try:
        done = work.wait(timeout=timedelta(seconds=timeout))
    except RuntimeError as e:
        raise PeerLost(
            f"the {what} failed: another rank stopped or is {timeout:g} s late ({_first_line(e)})"
        ) from None
    if done is False:
        raise PeerLost(f"the {what} waited {timeout:g} s: another rank stopped or is stuck")


class _DDP(DistributedDataParallel):
    """DistributedDataParallel that accepts bnlab's SyncBatchNorm in a CPU module.

    torch refuses a CPU module holding any ``nn.SyncBatchNorm`` (its own runs on CUDA only);
    bnlab's is an instance of that class and runs over gloo, so the refusal is kept for others.
    """

    def _passing_sync_batchnorm_handle(self, module: nn.Module) -> None:
        theirs = [
            m
            for m in module.modules()
            if isinstance(m, nn.SyncBatchNorm) and not isinstance(m, SyncBatchNorm)
        ]
        if theirs:
            super()._passing_sync_batchnorm_handle(module)


class DDPRanks(Ranks):
    """This process's part of a run over the initialised default process group.

    Rank ``r`` of ``N`` trains on its shard of each global batch with DDP, BN synced or local;
    rank 0 writes the folder while the others wait at the end of each epoch.
    """

    def __init__(self, recipe: Recipe, sync_bn: bool, device: torch.device, timeout: float):
        self.recipe, self.sync_bn, self.device, self.timeout = recipe, sync_bn, device, timeout
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.backend = str(dist.get_backend())
        self.writes = self.rank == 0

    def __repr__(self) -> str:
        bn = "synced" if self.sync_bn else "local"
        return f"DDPRanks(rank={self.rank}, world={self.world}, bn={bn}, {self.backend})"

    def settings(self) -> dict[str, Any]:
        return {"nproc": self.world, "sync_bn": self.sync_bn}

    def config(self) -> dict[str, Any]:
        return {**self.settings(), "backend": self.backend}

    def checkpoint(self) -> dict[str, Any]:
        return {"ranks": self.settings()}

    def wrap(self, model: nn.Module) -> nn.Module:
        if self.sync_bn:  # in place: the BN children are replaced, sharing their tensors
            converted = SyncBatchNorm.convert_sync_batchnorm(model)
            assert converted is model, "the recipes' models are containers, converted in place"
        model.to(self.device)
        ids = [self.device] if self.device.type == "cuda" else None
        return _DDP(model, device_ids=ids, **{_BUFFER_SYNC: False})

    def rows(self, xtr: Tensor, ytr: Tensor, batch: Tensor) -> tuple[Tensor, Tensor]:
        mine = batch.tensor_split(self.world)[self.rank]  # b/N contiguous rows, b mod N get +1
        return xtr[mine].to(self.device), ytr[mine].to(self.device)

    def loss(self, logits: Tensor, y: Tensor, batch_size: int) -> tuple[Tensor, float]:
        summed = nn.functional.cross_entropy(logits, y, reduction="sum")
        # one process minimizes Σ_all ℓ / b; DDP averages the N ranks' gradients, so each rank
        # backpropagates N · Σ_mine ℓ / b, and the average is the one-process gradient
        return summed * (self.world / batch_size), summed.item()

    def _all_gather(self, t: Tensor, what: str) -> Tensor:
        out = [torch.empty_like(t) for _ in range(self.world)]
        _wait(dist.all_gather(out, t, async_op=True), what, self.timeout)
        return torch.stack(out)  # (N, *t.shape)

    def _all_reduce(self, t: Tensor, what: str) -> Tensor:
        _wait(dist.all_reduce(t, async_op=True), what, self.timeout)
        return t

    def gather(self, t: Tensor) -> Tensor:
        t = t.detach()
        # the counts first: shards differ by a row, or more in the last batch, and all_gather
        # needs one shape; the rows are padded to the largest shard, then cut back
        counts = self._all_gather(
            torch.tensor([len(t)], device=self.device), "all_gather of the shards' sizes"
        ).flatten()  # (N,)
        padded = t.new_zeros((int(counts.max()), *t.shape[1:]))
        padded[: len(t)] = t
        rows = self._all_gather(padded, "all_gather of the pre-activations")  # (N, max, ...)
        return torch.cat([rows[r, :n] for r, n in enumerate(counts.tolist())]).cpu()

    def totals(self, loss_sum: float, correct: int, seen: int) -> tuple[float, int, int]:
        sums = torch.tensor([loss_sum, correct, seen], dtype=torch.float64, device=self.device)
        self._all_reduce(sums, "all_reduce of the epoch's training sums")  # (3,), exact counts
        return float(sums[0]), int(sums[1]), int(sums[2])

    def evaluated(self, model: nn.Module) -> nn.Module:
        """A one-process copy on the CPU (plain BN layers): what is tested, saved and returned."""
        with torch.random.fork_rng(devices=[]):  # building initializes weights: leave the RNG be
            twin = self.recipe.build_model()
        twin.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
        return twin

    def end_epoch(self) -> None:
        self._all_reduce(
            torch.zeros(1, device=self.device), "wait for rank 0 to test and save the epoch"
        )


def _device(backend: str, local_rank: int) -> torch.device:
    if backend != "nccl":
        return torch.device("cpu")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def _train_rank(
    recipe: Recipe,
    out: Path,
    local_rank: int,
    *,
    sync_bn: bool,
    resume: bool,
    data: Data | None,
    console: Console | None,
    stop_after: int | None,
    timeout: float,
) -> RunResult:
    """This rank's part of the run, in the initialised default group."""
    device = _device(str(dist.get_backend()), local_rank)
    ranks = DDPRanks(recipe, sync_bn, device, timeout)
    return train(
        recipe,
        out,
        resume=resume,
        data=data,
        console=console if ranks.writes else None,
        stop_after=stop_after,
        ranks=ranks,
    )


def train_this_rank(
    recipe: Recipe,
    out: str | Path,
    *,
    sync_bn: bool = True,
    resume: bool = False,
    data: Data | None = None,
    console: Console | None = None,
    stop_after: int | None = None,
    timeout: float = TIMEOUT,
) -> RunResult:
    """This process's part of a run that torchrun started (``init_method="env://"``).

    Joins the group that RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR/PORT describe, trains and
    leaves it; only rank 0 uses ``console`` and writes ``out``.  Rank 0's result holds the
    metrics; the others' hold none.
    """
    check_syncable(recipe, sync_bn)
    local_rank = int(os.environ["LOCAL_RANK"])
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    backend = backend_for(local_ranks)
    _device(backend, local_rank)  # NCCL: this rank's GPU before the group forms
    dist.init_process_group(backend, init_method="env://", timeout=timedelta(seconds=timeout))
    try:
        return _train_rank(
            recipe, Path(out), local_rank, sync_bn=sync_bn, resume=resume, data=data,
            console=console, stop_after=stop_after, timeout=timeout,
        )  # fmt: skip
    finally:
        gc.collect()  # DDP's reducer, in reference cycles, lets go of the group: a clean exit
        with contextlib.suppress(Exception):  # a failure of the run is what the caller must see
            dist.destroy_process_group()


# ---- N processes started here: one _Job each, their reports, and what the parent makes of them


@dataclass
class _Job:
    """What a spawned rank needs (pickled to it)."""

    recipe: Recipe
    out: Path
    world: int
    port: int
    backend: str
    sync_bn: bool
    resume: bool
    stop_after: int | None
    show: bool  # rank 0 draws the progress bars on this terminal
    data_file: Path | None  # the data the caller passed, saved once; None: each rank loads it
    timeout: float
    threads: int


@dataclass
class _Report:
    """What a rank tells the parent as it ends."""

    rank: int
    kind: str  # "done", "interrupted" or "error"
    metrics: list[dict[str, Any]] | None = None  # rank 0, done
    weights: bytes | None = None  # rank 0, done: the final state_dict, torch.save'd
    where: tuple[int, int, int, int, str] | None = None  # interrupted: epoch … phase
    message: str = ""  # error: one line
    user: bool = False  # error: a mistake in the input (BNLabError), not a crash
    follows: bool = False  # error: it followed another rank's failure (a collective failed)
    at: float = 0.0  # time.time() of the failure


def _follows(e: BaseException) -> bool:
    """Whether ``e`` is what a rank sees when another has stopped (a failed collective)."""
    if isinstance(e, PeerLost | dist.DistError):
        return True
    text = str(e)
    return "peer died" in text or "Connection closed by peer" in text or "Connection reset" in text


def _describe(rank: int, e: BaseException) -> _Report:
    user = isinstance(e, BNLabError) and not isinstance(e, PeerLost)
    line = _first_line(e) if user else f"{type(e).__name__}: {_first_line(e)}"
    return _Report(rank, "error", message=line, user=user, follows=_follows(e), at=time.time())


def _weights(model: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def _stop_with_the_parent() -> None:
    """Ctrl-C this rank should its parent die (rank 0 then tidies the folder, as on Ctrl-C)."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # the parent waits for its ranks: this returns only if it died first
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="bnlab-parent-watch", daemon=True).start()


def _rank_main(rank: int, job: _Job, conn: Connection) -> None:
    """A spawned rank: join the group, train, tell the parent how it ended; never a traceback."""
    code = 0
    try:
        _stop_with_the_parent()
        torch.set_num_threads(job.threads)
        _device(job.backend, rank)
        dist.init_process_group(
            job.backend, init_method=f"tcp://127.0.0.1:{job.port}", rank=rank,
            world_size=job.world, timeout=timedelta(seconds=job.timeout),
        )  # fmt: skip
        data = None if job.data_file is None else torch.load(job.data_file, mmap=True)
        console = Console() if job.show else None
        result = _train_rank(
            job.recipe, job.out, rank, sync_bn=job.sync_bn, resume=job.resume, data=data,
            console=console, stop_after=job.stop_after, timeout=job.timeout,
        )  # fmt: skip
        report = _Report(rank, "done")
        if rank == 0:
            report.metrics, report.weights = result.metrics, _weights(result.model)
    except TrainingInterrupted as e:
        where = (e.epoch, e.batch, e.batches, e.epochs_done, e.phase)
        report, code = _Report(rank, "interrupted", where=where), 130
    except KeyboardInterrupt:
        report, code = _Report(rank, "interrupted"), 130
    except BaseException as e:
        report = _describe(rank, e)
        code = 2 if report.user else 1
    try:
        conn.send(report)
        conn.close()
    except (OSError, ValueError):  # the parent is gone: nobody to tell
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    # no interpreter teardown: after a failed collective, gloo's threads are still running and
    # their C++ destructors would abort the process, with a line on stderr
    os._exit(code)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _threads(nproc: int) -> int:
    """Threads a rank may use: OMP_NUM_THREADS if set, else the cores shared among the ranks."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return max(1, (os.cpu_count() or 1) // nproc)


class _Spawned:
    """The N spawned processes, watched until every one has ended."""

    def __init__(self, job: _Job) -> None:
        ctx = mp.get_context("spawn")
        self.procs: list[mp.process.BaseProcess] = []
        self.conns: list[Connection] = []
        self.reports: dict[int, _Report] = {}
        self.killed: set[int] = set()  # ranks this process killed: they did not crash
        self.interrupted = False
        try:
            for rank in range(job.world):
                receive, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(
                    target=_rank_main, args=(rank, job, send), name=f"bnlab-rank{rank}",
                    daemon=True,
                )  # fmt: skip
                self.conns.append(receive)
                proc.start()
                send.close()  # the child holds its end: EOF here once it has exited
                self.procs.append(proc)
        except BaseException:  # the ranks started would wait for the others until timeout
            for proc in self.procs:
                proc.kill()
            raise

    def _read(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for a report or an exit; read what has come."""
        open_conns = [c for r, c in enumerate(self.conns) if r not in self.reports and not c.closed]
        sentinels = [p.sentinel for p in self.procs if p.exitcode is None]
        for ready in wait([*open_conns, *sentinels], timeout=timeout):
            if isinstance(ready, Connection):
                self._receive(self.conns.index(ready))

    def _receive(self, rank: int) -> None:
        with contextlib.suppress(EOFError, OSError):  # EOF: it died before it could say how
            self.reports[rank] = self.conns[rank].recv()
        self.conns[rank].close()

    def _failed(self) -> bool:
        """Whether a rank has failed, been interrupted, or ended without saying it was done."""
        done = {r for r, report in self.reports.items() if report.kind == "done"}
        crashed = any(
            p.exitcode not in (None, 0) for r, p in enumerate(self.procs) if r not in done
        )
        return crashed or len(done) < len(self.reports)

    def succeeded(self) -> bool:
        """Every rank said it was done (an exit that aborts afterwards changes nothing)."""
        done = [r.kind == "done" for r in self.reports.values()]
        return not self.interrupted and len(done) == len(self.procs) and all(done)

    def _alive(self) -> list[mp.process.BaseProcess]:
        return [p for p in self.procs if p.exitcode is None]

    def _drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while self._alive() and time.monotonic() < end:
            self._read(min(0.5, max(0.0, end - time.monotonic())))

    def _stop_the_rest(self, first: float) -> None:
        """The others get ``first`` s to stop on their own, then a Ctrl-C (rank 0 tidies the
        folder) and GRACE s, then are killed."""
        self._drain(first)
        for p in self._alive():
            os.kill(p.pid, signal.SIGINT)  # type: ignore[arg-type]
        self._drain(GRACE)
        self._kill()
        self._drain(GRACE)

    def _kill(self) -> None:
        for rank, p in enumerate(self.procs):
            if p.exitcode is None:
                self.killed.add(rank)
                p.kill()

    def watch(self) -> None:
        """Until every rank has ended; once one fails (or Ctrl-C here), the rest are stopped."""
        try:
            try:
                while self._alive() and not self._failed():
                    self._read(1.0)
            except KeyboardInterrupt:  # the terminal's Ctrl-C has reached the ranks too, mostly
                self.interrupted = True
            self._stop_the_rest(2.0 if self.interrupted else GRACE)
        finally:
            self._kill()
            for rank, c in enumerate(self.conns):  # what came just before a rank exited
                if rank not in self.reports and not c.closed and c.poll(0):
                    self._receive(rank)
                c.close()

    def failure(self) -> RankFailed | None:
        """The failure that came first: an error of its own before a crash, before the errors
        that only followed from another rank's stopping; None if the ranks were interrupted."""
        errors = [r for r in self.reports.values() if r.kind == "error"]
        own = sorted((r for r in errors if not r.follows), key=lambda r: r.at)
        if own:
            return RankFailed(own[0].rank, f"rank {own[0].rank}: {own[0].message}", own[0].user)
        for rank, p in enumerate(self.procs):
            if p.exitcode not in (0, 130) and rank not in self.reports and rank not in self.killed:
                how = (
                    f"killed by {signal.Signals(-p.exitcode).name}"
                    if p.exitcode is not None and p.exitcode < 0
                    else f"exit status {p.exitcode}"
                )
                return RankFailed(rank, f"rank {rank} died ({how}) before it could say why", False)
        if errors:
            first = min(errors, key=lambda r: r.at)
            return RankFailed(first.rank, f"rank {first.rank}: {first.message}", first.user)
        return None


def train_distributed(
    recipe: Recipe,
    out: str | Path,
    nproc: int,
    *,
    sync_bn: bool = True,
    resume: bool = False,
    data: Data | None = None,
    console: Console | None = None,
    stop_after: int | None = None,
    timeout: float = TIMEOUT,
) -> RunResult:
    """:func:`~bnlab.experiments.train.train` on ``nproc`` processes started here.

    ``sync_bn``: BN over the global batch (bnlab's SyncBatchNorm) or each rank's shard.
    ``data`` (default: each rank loads Fashion-MNIST, as one process would) is saved once to a
    temporary file that every rank memory-maps.  ``console``: rank 0 draws its progress on this
    process's terminal.  The settings and the folder are checked here, before any process
    starts, as one process checks them (:class:`~bnlab.errors.BNValueError`).

    Raises :class:`RankFailed` (one line naming the rank) when a rank fails, and
    :class:`~bnlab.experiments.runfolder.TrainingInterrupted` on Ctrl-C; either way ``out`` is
    left as its last checkpoint left it.  The result's model is a one-process model.
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise BNValueError(f"--nproc: expected a positive whole number (got {nproc!r})")
    out = Path(out)
    check_syncable(recipe, sync_bn)
    state = starting_state(recipe, out, resume, None)  # rank 0 says what it continues
    refuse_other_ranks(out, state, {"nproc": nproc, "sync_bn": sync_bn})
    folder = Folder(out)  # what this call creates: tidied here too, should rank 0 be killed
    with tempfile.TemporaryDirectory(prefix="bnlab-ranks-") as tmp:
        data_file = None
        if data is not None:
            data_file = Path(tmp) / "data.pt"
            torch.save(tuple(data), data_file)
        job = _Job(
            recipe, out, nproc, _free_port(), backend_for(nproc), sync_bn, resume, stop_after,
            console is not None, data_file, timeout, _threads(nproc),
        )  # fmt: skip
        ranks = _Spawned(job)
        ranks.watch()
    head = ranks.reports.get(0)
    if ranks.succeeded() and head is not None and head.weights is not None:
        with torch.random.fork_rng(devices=[]):
            model = recipe.build_model()
        model.load_state_dict(torch.load(io.BytesIO(head.weights)))
        return RunResult(out, head.metrics or [], model)
    done = saved_epoch(out / "checkpoint.pt", 0)
    folder.tidy(done)  # rank 0 has done it, unless it was killed first
    failure = ranks.failure()
    if ranks.interrupted or (failure is None and head is not None and head.where is not None):
        where = head.where if head is not None and head.where else (done + 1, 0, 0, done, "")
        raise TrainingInterrupted(out, *where)
    raise failure or RankFailed(0, "rank 0 ended without a result", False)
