"""Build and load the fused kernels (``kernels.cpp``), compiled once per machine and cached on disk.

The library is a plain shared object with a C ABI, loaded with :mod:`ctypes`: no torch headers,
so it compiles in about two seconds (a torch C++ extension takes a minute on two cores).  It is
built with OpenMP and, loaded after torch, binds to the ``libgomp`` torch has already loaded: one
thread pool serves torch's ops and bnlab's kernels, so they never compete for the cores.

Nothing is compiled at import.  The first call that needs the kernels builds them (``make tour``
and ``make test`` do it up front: ``python -m bnlab.backends.fused``) into
``$BNLAB_KERNEL_CACHE`` or ``~/.cache/bnlab/kernels``, under a name that hashes the source, the
compiler and the CPU's instruction sets (the code is built for this CPU, ``-march=native``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

SOURCE = Path(__file__).with_name("kernels.cpp")
FLAGS = ("-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-std=c++17")
ABI_VERSION = 1

_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_failure: str | None = None
#: seconds the last build in this process took (None: the library came from the cache)
build_seconds: float | None = None


class KernelsUnavailable(RuntimeError):
    """The fused kernels cannot be built or loaded here (no C++ compiler, or it failed)."""


def compiler() -> str | None:
    """The C++ compiler to use: ``$CXX``, else ``c++`` or ``g++`` on the PATH."""
    for name in (os.environ.get("CXX"), "c++", "g++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def cache_dir() -> Path:
    root = os.environ.get("BNLAB_KERNEL_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bnlab" / "kernels"


def library_path(cxx: str) -> Path:
    """Where the library for this source, compiler and CPU lives (built or not)."""
    real = os.path.realpath(cxx)
    key = hashlib.sha256()
    for part in (SOURCE.read_bytes(), " ".join(FLAGS).encode(), real.encode(),
                 str(os.stat(real).st_mtime_ns).encode(), platform.machine().encode(),
                 _cpu_flags().encode(), str(ABI_VERSION).encode()):
        key.update(part)
        key.update(b"\0")
    return cache_dir() / f"bnlab_kernels_{key.hexdigest()[:16]}.so"


def _compile(cxx: str, target: Path) -> None:
    """Compile into a temporary file, then rename: concurrent builders never see half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        proc = subprocess.run(
            [cxx, *FLAGS, str(SOURCE), "-o", tmp], capture_output=True, text=True, timeout=300
        )
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if "error" in ln] or [proc.stderr]
            raise KernelsUnavailable(f"{Path(cxx).name} failed: {lines[0].strip()[:300]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load() -> ctypes.CDLL:
    global build_seconds
    import torch  # noqa: F401  -- torch's libgomp first, so the kernels bind to it

    cxx = compiler()
    if cxx is None:
        raise KernelsUnavailable("no C++ compiler found (install g++, or set CXX)")
    path = library_path(cxx)
    if not path.exists():
        start = time.perf_counter()
        _compile(cxx, path)
        build_seconds = time.perf_counter() - start
    lib = ctypes.CDLL(str(path))
    if lib.bnlab_abi_version() != ABI_VERSION:
        raise KernelsUnavailable(f"{path} has another ABI version")
    vp, i32, i64, f64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_double
    lib.bnlab_forward.argtypes = [i32, i32, vp, vp, i64, i64, i64, vp, vp, vp, vp, i32, f64, f64,
                                  vp, vp, vp, i32]
    lib.bnlab_forward.restype = i32
    lib.bnlab_backward.argtypes = [i32, i32, vp, vp, vp, i64, i64, i64, vp, vp, vp, i32, vp, vp,
                                   i32]
    lib.bnlab_backward.restype = i32
    return lib


def library() -> ctypes.CDLL:
    """The loaded kernels, built first if this machine has none cached.

    Raises:
        KernelsUnavailable: no compiler, or the build failed (remembered: not retried).
    """
    global _library, _failure
    if _library is not None:
        return _library
    with _lock:
        if _library is None:
            if _failure is not None:
                raise KernelsUnavailable(_failure)
            try:
                _library = _load()
            except (KernelsUnavailable, OSError, subprocess.SubprocessError) as e:
                _failure = str(e)
                raise KernelsUnavailable(_failure) from None
    return _library


def available() -> bool:
    """Whether the kernels can be used (building them now if needed)."""
    try:
        library()
    except KernelsUnavailable:
        return False
    return True


def main() -> int:
    """``python -m bnlab.backends.fused``: build (or find) the kernels and say where."""
    start = time.perf_counter()
    try:
        library()
    except KernelsUnavailable as e:
        print(f"bnlab: fused CPU kernels unavailable ({e}); the portable backend will be used")
        return 0
    cxx = compiler()
    assert cxx is not None
    took = time.perf_counter() - start
    how = f"built in {build_seconds:.1f} s" if build_seconds is not None else "cached"
    print(f"bnlab: fused CPU kernels {how} ({took:.1f} s): {library_path(cxx)}")
    return 0

