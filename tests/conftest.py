"""Shared test set-up: one thread per worker, every backend for the parity tests, and options."""

from __future__ import annotations

import os

import pytest
import torch

from bnlab import backends
from bnlab.backends import fused

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

#: the backends ``every_backend`` runs a test against ('auto' is one of them on any machine)
BACKENDS = ("torch", "cpu-fused")


def pytest_addoption(parser):
    parser.addoption(
        "--regen-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files under tests/golden/ from the current output, on purpose",
    )


def require_fused() -> None:
    """Skip the calling test where the fused kernels cannot be built, fail instead on CI.

    CI has a compiler: there a missing library is a broken build, not a machine without g++.
    """
    try:
        fused.library()
    except fused.KernelsUnavailable as e:
        reason = f"fused CPU kernels unavailable here: {e}"
    else:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the kernels must build on CI)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def fused_kernels() -> None:
    """The fused kernels, built: the test is skipped where they cannot be (failed on CI)."""
    require_fused()


@pytest.fixture(params=BACKENDS)
def every_backend(request):
    """The test once per backend, with ``backend='auto'`` meaning that one; yields its name."""
    name = request.param
    if name == "cpu-fused":
        require_fused()
    with backends.prefer(name):
        yield name
