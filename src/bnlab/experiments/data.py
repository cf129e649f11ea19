"""Fashion-MNIST from its four IDX gz files: found locally, or downloaded once and verified.

``fashion_mnist(split)`` looks for the two files of a split in, in order:

1. ``$BNLAB_DATA`` (a folder);
2. the cache folder, ``$XDG_CACHE_HOME/bnlab/fashion-mnist`` (default ``~/.cache/…``);
3. ``/usr/share/datasets/fashion-mnist``, where Debian's and Ubuntu's package
   ``dataset-fashion-mnist`` puts them;
4. a download from the dataset's official location into the cache folder.

The first folder that holds both files of the split wins.  Files found locally are not
hash-checked (``$BNLAB_DATA`` may hold your own or tiny test files) but are fully validated
structurally; a downloaded file is checked against the SHA-256 of its *decompressed* content
(gzip output differs between distributors, the data does not) and deleted if it differs.
Every problem is a :class:`DataError` that names the file and what is wrong with it.

Decoded tensors are kept in-process (one entry per split, keyed by the files' paths and stat),
so repeated calls return the same tensors at the cost of a few ``stat`` calls.  They are shared:
do not modify them in place.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import struct
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import torch
from torch import Tensor

from ..errors import BNTypeError, BNValueError

Split = Literal["train", "test"]

CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""The ten class names; label ``k`` is ``CLASSES[k]``."""

FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
"""(images file, labels file) of each split."""

SHA256: dict[str, str] = {
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
}
"""SHA-256 of each file's decompressed content (the name without ``.gz``)."""

URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
"""The dataset's official location; a file's URL is this plus its name."""

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where the Debian/Ubuntu package ``dataset-fashion-mnist`` installs the four files."""

IMAGES_MAGIC = 0x00000803  # 2051: unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # 2049: unsigned bytes, 1 dimension
ROWS = COLS = 28
_CHUNK = 1 << 16


class DataError(BNValueError):
    """The dataset cannot be found, fetched or read: names the file and what is wrong."""


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/bnlab/fashion-mnist``, or ``~/.cache/bnlab/fashion-mnist``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "bnlab" / "fashion-mnist"


def _check_split(split: str) -> tuple[str, str]:
    if split not in FILES:
        raise BNValueError(f"split must be 'train' or 'test' (got {split!r})")
    return FILES[split]


def _candidates() -> list[Path]:
    """The folders searched, in order: $BNLAB_DATA, the cache folder, the Debian folder."""
    folders = []
    env = os.environ.get("BNLAB_DATA", "")
    if env:
        folders.append(Path(env).expanduser())
    folders += [cache_dir(), DEBIAN_DIR]
    return folders


def find_data_dir(split: Split) -> Path | None:
    """The first of $BNLAB_DATA, the cache folder and the Debian folder with both split files."""
    names = _check_split(split)
    for folder in _candidates():
        if all((folder / name).is_file() for name in names):
            return folder
    return None


# ---------------------------------------------------------------------------------------------
# Reading and validating IDX gz files


def _gunzip(path: Path, raw: bytes) -> bytes:
    if not raw:
        raise DataError(f"{path}: empty file (0 bytes), not a gzip file")
    try:
        return gzip.decompress(raw)
    except EOFError as exc:
        raise DataError(
            f"{path}: truncated gzip stream ({exc}); the file was cut short, copy or fetch it again"
        ) from exc
    except (OSError, zlib.error) as exc:
        hint = ""
        if raw[:3] == b"\x00\x00\x08":
            hint = "; it looks like an uncompressed IDX file, gzip it"
        raise DataError(f"{path}: not a gzip file or corrupt gzip data ({exc}){hint}") from exc


def _read_gz(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    return _gunzip(path, raw)


def _check_magic(path: Path, magic: int, expected: int) -> None:
    if magic == expected:
        return
    kinds = {IMAGES_MAGIC: "IDX images", LABELS_MAGIC: "IDX labels"}
    found = f"0x{magic:08X} ({magic}"
    found += f", {kinds[magic]})" if magic in kinds else ")"
    raise DataError(
        f"{path}: wrong magic number: expected 0x{expected:08X} ({expected}, "
        f"{kinds[expected]}), found {found}"
    )


def _check_payload(path: Path, data: bytes, header: int, count: int, what: str) -> None:
    expected = header + count
    if len(data) < expected:
        raise DataError(
            f"{path}: truncated: the header says {what}, i.e. {expected:,} bytes decompressed, "
            f"but there are only {len(data):,}"
        )
    if len(data) > expected:
        raise DataError(
            f"{path}: too long: the header says {what}, i.e. {expected:,} bytes decompressed, "
            f"but there are {len(data):,} ({len(data) - expected:,} trailing bytes)"
        )


def _decode_images(path: Path, data: bytes) -> Tensor:
    if len(data) < 16:
        raise DataError(
            f"{path}: truncated: {len(data)} bytes decompressed, shorter than the 16-byte "
            "header of an IDX images file"
        )
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    _check_magic(path, magic, IMAGES_MAGIC)
    if (rows, cols) != (ROWS, COLS):
        raise DataError(
            f"{path}: images are {rows}×{cols} in the header, Fashion-MNIST's are {ROWS}×{COLS}"
        )
    _check_payload(path, data, 16, n * rows * cols, f"{n:,} images of {rows}×{cols}")
    array = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows, cols)
    return torch.from_numpy(array.copy())  # frombuffer on bytes is read-only


def _decode_labels(path: Path, data: bytes) -> Tensor:
    if len(data) < 8:
        raise DataError(
            f"{path}: truncated: {len(data)} bytes decompressed, shorter than the 8-byte "
            "header of an IDX labels file"
        )
    magic, n = struct.unpack(">II", data[:8])
    _check_magic(path, magic, LABELS_MAGIC)
    _check_payload(path, data, 8, n, f"{n:,} labels")
    array = np.frombuffer(data, dtype=np.uint8, offset=8)
    bad = np.flatnonzero(array >= len(CLASSES))
    if bad.size:
        raise DataError(
            f"{path}: label values must be 0–9, found {int(array[bad[0]])} at index "
            f"{int(bad[0])} ({bad.size:,} labels out of range)"
        )
    return torch.from_numpy(array.astype(np.int64))


def _load(images_path: Path, labels_path: Path) -> tuple[Tensor, Tensor]:
    images = _decode_images(images_path, _read_gz(images_path))
    labels = _decode_labels(labels_path, _read_gz(labels_path))
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} holds {images.shape[0]:,} images but {labels_path} holds "
            f"{labels.shape[0]:,} labels; the counts must match"
        )
    return images, labels


# ---------------------------------------------------------------------------------------------
# Download


def _open_url(url: str) -> BinaryIO:
    """Open ``url`` for reading (a module-level function so tests can serve bytes instead)."""
    return urllib.request.urlopen(url, timeout=60)  # fixed URL; hash-checked after


def _length(response: object) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _verify(path: Path, name: str) -> None:
    """Check a downloaded file's decompressed SHA-256 (the caller deletes it if this raises)."""
    key = name.removesuffix(".gz")
    try:
        digest = hashlib.sha256(_read_gz(path)).hexdigest()
    except DataError as exc:
        raise DataError(
            f"downloaded {name} from {URL + name} is unusable (deleted): {exc}"
        ) from exc
    if digest != SHA256[key]:
        raise DataError(
            f"downloaded {name} from {URL + name} failed verification and was deleted: "
            f"SHA-256 of its decompressed content is {digest}, expected {SHA256[key]}"
        )


def _download(name: str, folder: Path) -> Path:
    """Fetch ``URL + name`` into ``folder`` atomically (temp file, verify, rename)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, _open_url(URL + name) as response:
            progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            with progress:
                task = progress.add_task(f"fetching {name}", total=_length(response))
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    progress.advance(task, len(chunk))
        _verify(tmp, name)
        target = folder / name
        os.replace(tmp, target)
        return target
    finally:
        tmp.unlink(missing_ok=True)  # a failed or unverified download leaves nothing behind


def _not_found(split: str, reason: BaseException) -> DataError:
    env = os.environ.get("BNLAB_DATA", "")
    env_note = f" (it is set to {env}, which lacks them)" if env else ""
    names = ", ".join(name for pair in FILES.values() for name in pair)
    return DataError(
        f"Fashion-MNIST ({split} split) was not found and could not be downloaded "
        f"({type(reason).__name__}: {reason}). Get it in one of three ways:\n"
        f"  1. set BNLAB_DATA to a folder holding the four files {names}{env_note};\n"
        f"  2. install the Debian/Ubuntu package: apt-get install dataset-fashion-mnist "
        f"(it puts them in {DEBIAN_DIR});\n"
        f"  3. allow the download from the official location {URL} into the cache folder "
        f"{cache_dir()}."
    )


def _fetch(split: str) -> Path:
    folder = cache_dir()
    for name in FILES[split]:
        if (folder / name).is_file():
            continue
        try:
            _download(name, folder)
        except (OSError, http.client.HTTPException, urllib.error.URLError) as exc:
            raise _not_found(split, exc) from exc
    return folder


# ---------------------------------------------------------------------------------------------
# Public API

_LOADED: dict[str, tuple[tuple[object, ...], tuple[Tensor, Tensor]]] = {}


def _stat_key(folder: Path, names: tuple[str, str]) -> tuple[object, ...]:
    key: list[object] = []
    for name in names:
        path = folder / name
        st = path.stat()
        key += [str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]
    return tuple(key)


def fashion_mnist(split: Split) -> tuple[Tensor, Tensor]:
    """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` int64 of split ``"train"`` or ``"test"``.

    Searches $BNLAB_DATA, the cache folder and the Debian folder, else downloads into the cache
    folder; raises :class:`DataError` naming the file and the problem.  The returned tensors are
    cached and shared between calls: do not modify them in place.
    """
    names = _check_split(split)
    folder = find_data_dir(split) or _fetch(split)
    key = _stat_key(folder, names)
    hit = _LOADED.get(split)
    if hit is not None and hit[0] == key:
        return hit[1]
    tensors = _load(folder / names[0], folder / names[1])
    _LOADED[split] = (key, tensors)
    return tensors


def clear_cache() -> None:
    """Forget the decoded tensors kept in-process."""
    _LOADED.clear()


def to_float(images: Tensor) -> Tensor:
    """uint8 images ``(N, H, W)`` as float32 ``(N, 1, H, W)`` in [0, 1] (divided by 255)."""
    if not isinstance(images, Tensor):
        raise BNTypeError(f"images must be a torch.Tensor (got {type(images).__name__})")
    if images.dtype != torch.uint8:
        raise BNTypeError(f"images must be uint8 (got {images.dtype})")
    if images.dim() != 3:
        raise BNValueError(f"images must be (N, H, W) (got {images.dim()} dimensions)")
    return images.unsqueeze(1).to(torch.float32).div_(255.0)


def write_idx(path: str | os.PathLike[str], images_or_labels: Tensor | np.ndarray) -> Path:
    """Write a valid IDX gz file: ``(N, H, W)`` → images (magic 2051), ``(N,)`` → labels (2049).

    Values must be integers in 0–255 (they are stored as unsigned bytes).  Creates the parent
    folder; returns the path.  Used to make tiny datasets for tests.
    """
    array = np.asarray(
        images_or_labels.detach().cpu()
        if isinstance(images_or_labels, Tensor)
        else images_or_labels
    )
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise BNTypeError(f"write_idx needs integer values (got dtype {array.dtype})")
    if array.ndim == 3:
        header = struct.pack(">IIII", IMAGES_MAGIC, *array.shape)
    elif array.ndim == 1:
        header = struct.pack(">II", LABELS_MAGIC, array.shape[0])
    else:
        raise BNValueError(
            f"write_idx needs images (N, H, W) or labels (N,) (got {array.ndim} dimensions)"
        )
    if array.size and (array.min() < 0 or array.max() > 255):
        raise BNValueError(
            f"write_idx stores unsigned bytes: values must be in 0–255 "
            f"(got {int(array.min())}..{int(array.max())})"
        )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    target.write_bytes(gzip.compress(payload, mtime=0))
    return target
