"""Building and loading the fused kernels (``bnlab.backends.fused.build``): never at import,
cached under a name that follows the source, built into a fresh cache in one call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bnlab.backends.fused import build


def _python(code: str, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (or ``-m`` args) in a fresh interpreter whose kernel cache is ``cache``."""
    env = {**os.environ, "BNLAB_KERNEL_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, *args] if args else [sys.executable, "-c", code]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_import_neither_builds_nor_loads_the_library(tmp_path):
    code = (
        "import bnlab, bnlab.nn, bnlab.functional, sys, torch\n"
        "from bnlab.backends.fused import build\n"
        "assert build._library is None and build._failure is None, 'loaded at import'\n"
        "bnlab.nn.BatchNorm2d(3, backend='torch')(torch.randn(2, 3, 2, 2))  # nor does this\n"
        "assert build._library is None, 'loaded by the portable backend'\n"
        "maps = open('/proc/self/maps').read() if sys.platform == 'linux' else ''\n"
        "assert 'bnlab_kernels' not in maps, 'the shared object is mapped'\n"
        "print('ok')\n"
    )
    cache = tmp_path / "cache"
    assert _python(code, cache).stdout.strip() == "ok"
    assert not cache.exists() or not any(cache.iterdir()), "something was built at import"


def test_library_path_follows_the_source_not_its_place(tmp_path, monkeypatch):
    monkeypatch.setenv("BNLAB_KERNEL_CACHE", str(tmp_path / "cache"))
    cxx = sys.executable  # any existing file stands in for the compiler: its path is hashed
    path = build.library_path(cxx)
    assert path.parent == tmp_path / "cache" and path.name.startswith("bnlab_kernels_")
    copy = tmp_path / "kernels.cpp"
    copy.write_bytes(build.SOURCE.read_bytes())
    monkeypatch.setattr(build, "SOURCE", copy)
    assert build.library_path(cxx) == path  # the same source elsewhere: the same library
    copy.write_bytes(build.SOURCE.read_bytes() + b"\n// one more comment\n")
    changed = build.library_path(cxx)
    assert changed != path and changed.parent == path.parent


@pytest.mark.usefixtures("fused_kernels")  # a compiler is needed (CI has one)
def test_build_into_a_fresh_cache(tmp_path):
    """The first call builds the library (into a temporary name, then renamed); the next
    process finds it cached."""
    code = (
        "import torch, torch.nn.functional as F\n"
        "from bnlab.backends.fused import build\n"
        "from bnlab.functional import batch_norm\n"
        "x = torch.randn(8, 3, 5, 5)\n"
        "y = batch_norm(x, None, None, training=True, backend='cpu-fused')\n"
        "assert build.build_seconds is not None, 'not built by this process'\n"
        "torch.testing.assert_close(y, F.batch_norm(x, None, None, training=True))\n"
        "print(build.library_path(build.compiler()))\n"
    )
    cache = tmp_path / "cache"
    built = Path(_python(code, cache).stdout.strip())
    assert built.parent == cache and built.is_file()
    assert list(cache.iterdir()) == [built]  # no half-written temporary left behind
    again = _python("", cache, "-m", "bnlab.backends.fused").stdout
    assert "cached" in again and str(built) in again


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc")
def test_the_kernels_share_torchs_openmp_runtime(tmp_path):
    """One libgomp in the process after the kernels load: torch's, whose thread pool both use."""
    pytest.importorskip("torch")
    if not build.available():
        pytest.skip("the fused kernels cannot be built here")
    code = (
        "import torch\n"
        "from bnlab.backends.fused import build\n"
        "build.library()\n"
        "maps = open('/proc/self/maps').read().splitlines()\n"
        "print(json.dumps(sorted({line.split()[-1] for line in maps if 'libgomp' in line})))\n"
    )
    gomps = json.loads(_python("import json\n" + code, Path(build.cache_dir())).stdout)
    assert len(gomps) == 1, f"expected torch's one OpenMP runtime, found {gomps}"
