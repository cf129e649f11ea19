"""Fashion-MNIST loading: search order, structural validation, verified download, real files.

Every test runs isolated: no $BNLAB_DATA, HOME in tmp_path, the Debian folder pointed at an empty
tmp folder, and a URL opener that refuses, so nothing depends on what this machine has installed
or on the network.  Only ``test_real_fashion_mnist`` reads the installed Debian package.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from bnlab.errors import BNLabError, BNTypeError, BNValueError
from bnlab.experiments import data
from bnlab.experiments.data import (
    CLASSES,
    URL,
    DataError,
    cache_dir,
    fashion_mnist,
    find_data_dir,
    to_float,
    write_idx,
)

REAL_DIR = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_DEBIAN_DIR = data.DEBIAN_DIR  # before the autouse fixture replaces it
TRAIN_IMAGES, TRAIN_LABELS = data.FILES["train"]
TEST_IMAGES, TEST_LABELS = data.FILES["test"]


def _refuse(url: str):
    raise urllib.error.URLError(f"no network in tests ({url})")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("BNLAB_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.setattr(data, "_open_url", _refuse)
    data.clear_cache()
    yield
    data.clear_cache()


def make_split(
    folder: Path, split: str = "train", n: int = 7, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Write ``n`` random images and labels of ``split`` into ``folder``; return them."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g, dtype=torch.int64)
    images_name, labels_name = data.FILES[split]
    write_idx(folder / images_name, images)
    write_idx(folder / labels_name, labels)
    return images, labels


def images_payload(n: int = 3, rows: int = 28, cols: int = 28, magic: int = 2051) -> bytes:
    pixels = np.arange(n * rows * cols, dtype=np.uint8).tobytes()
    return struct.pack(">IIII", magic, n, rows, cols) + pixels


def labels_payload(values=(0, 1, 9), magic: int = 2049) -> bytes:
    return struct.pack(">II", magic, len(values)) + bytes(values)


def sha(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


# --- round trip, shapes, caching ------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "test"])
def test_round_trip_through_bnlab_data(tmp_path, monkeypatch, split):
    images, labels = make_split(tmp_path / "mine", split, n=7, seed=3)
    monkeypatch.setenv("BNLAB_DATA", str(tmp_path / "mine"))
    got_images, got_labels = fashion_mnist(split)
    assert got_images.shape == (7, 28, 28) and got_images.dtype == torch.uint8
    assert got_labels.shape == (7,) and got_labels.dtype == torch.int64
    assert torch.equal(got_images, images)
    assert torch.equal(got_labels, labels)


def test_repeated_calls_are_cached_and_files_changes_are_seen(tmp_path, monkeypatch):
    make_split(tmp_path / "mine", n=7)
    monkeypatch.setenv("BNLAB_DATA", str(tmp_path / "mine"))
    first = fashion_mnist("train")

    def no_reading(path):
        raise AssertionError(f"re-read {path}")

    with monkeypatch.context() as m:
        m.setattr(data, "_read_gz", no_reading)
        second = fashion_mnist("train")
    assert second[0] is first[0] and second[1] is first[1]

    images, _ = make_split(tmp_path / "mine", n=5, seed=1)  # replaced on disk: read again
    assert torch.equal(fashion_mnist("train")[0], images)


def test_bad_split_is_rejected():
    with pytest.raises(BNValueError, match="'train' or 'test'"):
        fashion_mnist("valid")  # type: ignore[arg-type]
    with pytest.raises(BNValueError, match="'train' or 'test'"):
        find_data_dir("t10k")  # type: ignore[arg-type]


def test_classes():
    assert CLASSES == (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )  # fmt: skip


# --- search order ---------------------------------------------------------------------------


def test_cache_dir_respects_xdg_cache_home(tmp_path, monkeypatch):
    assert cache_dir() == tmp_path / "home" / ".cache" / "bnlab" / "fashion-mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "bnlab" / "fashion-mnist"


def test_search_order(tmp_path, monkeypatch):
    env, debian = tmp_path / "env", tmp_path / "debian"
    assert find_data_dir("train") is None
    make_split(env, n=3)
    make_split(cache_dir(), n=4)
    make_split(debian, n=5)

    monkeypatch.setenv("BNLAB_DATA", str(env))
    assert find_data_dir("train") == env
    assert len(fashion_mnist("train")[0]) == 3

    monkeypatch.delenv("BNLAB_DATA")
    assert find_data_dir("train") == cache_dir()
    assert len(fashion_mnist("train")[0]) == 4

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # the ~/.cache one is not it
    assert find_data_dir("train") == debian
    assert len(fashion_mnist("train")[0]) == 5
    make_split(cache_dir(), n=6)
    assert cache_dir() == tmp_path / "xdg" / "bnlab" / "fashion-mnist"
    assert len(fashion_mnist("train")[0]) == 6


def test_folder_with_only_one_file_of_the_split_is_skipped(tmp_path, monkeypatch):
    partial, debian = tmp_path / "partial", tmp_path / "debian"
    make_split(partial, "train", n=3)
    (partial / TRAIN_LABELS).unlink()
    make_split(partial, "test", n=2)  # the other split's files do not count
    make_split(debian, "train", n=5)
    monkeypatch.setenv("BNLAB_DATA", str(partial))
    assert find_data_dir("train") == debian
    assert find_data_dir("test") == partial
    assert len(fashion_mnist("train")[0]) == 5


# --- structural validation ------------------------------------------------------------------

_IMAGES_GZ = gzip.compress(images_payload())
_BAD_CRC = _IMAGES_GZ[:-8] + bytes([_IMAGES_GZ[-8] ^ 0xFF]) + _IMAGES_GZ[-7:]

# (images file raw bytes, labels file raw bytes, substrings the message must hold)
# ``None`` means a valid gz file; the images/labels name is added to the expected substrings.
CORRUPT = {
    "images not gzip": (b"<html>not found</html>", None, ["not a gzip file"]),
    "labels not gzip": (None, b"garbage bytes", ["not a gzip file"]),
    "empty file": (b"", None, ["empty file"]),
    "uncompressed IDX": (images_payload(), None, ["not a gzip file", "uncompressed IDX"]),
    "truncated gzip": (_IMAGES_GZ[: len(_IMAGES_GZ) // 2], None, ["truncated gzip stream"]),
    "gzip CRC": (_BAD_CRC, None, ["corrupt gzip data", "CRC"]),
    "images magic": (
        gzip.compress(images_payload(magic=2049)),
        None,
        ["wrong magic number", "expected 0x00000803 (2051", "found 0x00000801 (2049"],
    ),
    "labels magic": (
        None,
        gzip.compress(labels_payload(magic=0xDEADBEEF)),
        ["wrong magic number", "expected 0x00000801 (2049", "found 0xDEADBEEF"],
    ),
    "image dims": (gzip.compress(images_payload(rows=32, cols=32)), None, ["32×32", "28×28"]),
    "images truncated": (
        gzip.compress(images_payload()[:-10]),
        None,
        ["truncated", "3 images of 28×28", "2,368 bytes", "only 2,358"],
    ),
    "images too long": (
        gzip.compress(images_payload() + b"\0" * 5),
        None,
        ["too long", "5 trailing bytes"],
    ),
    "images header short": (gzip.compress(images_payload()[:10]), None, ["16-byte header"]),
    "labels truncated": (
        None,
        gzip.compress(labels_payload()[:-1]),
        ["truncated", "3 labels", "only 10"],
    ),
    "labels too long": (None, gzip.compress(labels_payload() + b"\1"), ["too long"]),
    "labels header short": (None, gzip.compress(b"\0\0\x08"), ["8-byte header"]),
    "label out of range": (
        None,
        gzip.compress(labels_payload((0, 10, 3))),
        ["label values must be 0–9", "found 10 at index 1"],
    ),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_file_is_named_with_its_problem(tmp_path, monkeypatch, case):
    images_raw, labels_raw, expected = CORRUPT[case]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / TRAIN_IMAGES).write_bytes(images_raw if images_raw is not None else _IMAGES_GZ)
    (mine / TRAIN_LABELS).write_bytes(
        labels_raw if labels_raw is not None else gzip.compress(labels_payload())
    )
    make_split(tmp_path / "debian", n=3)  # a valid fallback must not be used silently
    monkeypatch.setenv("BNLAB_DATA", str(mine))
    with pytest.raises(DataError) as info:
        fashion_mnist("train")
    message = str(info.value)
    bad_file = TRAIN_IMAGES if images_raw is not None else TRAIN_LABELS
    for part in [str(mine / bad_file), *expected]:
        assert part in message, f"{part!r} not in {message!r}"


def test_count_mismatch_names_both_files(tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    write_idx(mine / TRAIN_IMAGES, torch.zeros(3, 28, 28, dtype=torch.uint8))
    write_idx(mine / TRAIN_LABELS, torch.zeros(4, dtype=torch.int64))
    monkeypatch.setenv("BNLAB_DATA", str(mine))
    with pytest.raises(DataError) as info:
        fashion_mnist("train")
    message = str(info.value)
    for part in [str(mine / TRAIN_IMAGES), str(mine / TRAIN_LABELS), "3 images", "4 labels"]:
        assert part in message


def test_data_error_is_a_bnlab_value_error():
    assert issubclass(DataError, BNLabError) and issubclass(DataError, ValueError)


# --- download -------------------------------------------------------------------------------


class _Response(io.BytesIO):
    def __init__(self, body: bytes, length: bool = True):
        super().__init__(body)
        self.headers = {"Content-Length": str(len(body))} if length else {}


def serve(monkeypatch, files: dict[str, bytes]) -> list[str]:
    """Make ``_open_url`` serve ``files`` (name → raw bytes); return the list of URLs asked."""
    asked: list[str] = []

    def opener(url: str):
        asked.append(url)
        name = url.removeprefix(URL)
        if url == name or name not in files:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)  # type: ignore[arg-type]
        return _Response(files[name], length=len(asked) % 2 == 1)

    monkeypatch.setattr(data, "_open_url", opener)
    return asked


def test_download_writes_cache_and_verifies(tmp_path, monkeypatch):
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    labels = torch.tensor([9, 0, 4, 2])
    src = tmp_path / "src"
    write_idx(src / TRAIN_IMAGES, images)
    write_idx(src / TRAIN_LABELS, labels)
    for name in (TRAIN_IMAGES, TRAIN_LABELS):
        payload = gzip.decompress((src / name).read_bytes())
        monkeypatch.setitem(data.SHA256, name.removesuffix(".gz"), sha(payload))
    asked = serve(monkeypatch, {n: (src / n).read_bytes() for n in (TRAIN_IMAGES, TRAIN_LABELS)})

    got_images, got_labels = fashion_mnist("train")
    assert asked == [URL + TRAIN_IMAGES, URL + TRAIN_LABELS]
    assert torch.equal(got_images, images) and torch.equal(got_labels, labels)
    assert sorted(p.name for p in cache_dir().iterdir()) == sorted([TRAIN_IMAGES, TRAIN_LABELS])
    assert find_data_dir("train") == cache_dir()

    data.clear_cache()  # from the cache folder now, without the network
    monkeypatch.setattr(data, "_open_url", _refuse)
    assert torch.equal(fashion_mnist("train")[0], images)


def test_download_fetches_only_the_missing_file(tmp_path, monkeypatch):
    make_split(cache_dir(), "test", n=3)
    labels = (cache_dir() / TEST_LABELS).read_bytes()
    (cache_dir() / TEST_LABELS).unlink()
    monkeypatch.setitem(data.SHA256, "t10k-labels-idx1-ubyte", sha(gzip.decompress(labels)))
    asked = serve(monkeypatch, {TEST_LABELS: labels})
    assert len(fashion_mnist("test")[1]) == 3
    assert asked == [URL + TEST_LABELS]


@pytest.mark.parametrize("body", ["other data", "not gzip"])
def test_downloaded_file_that_fails_verification_is_deleted(tmp_path, monkeypatch, body):
    payload = images_payload()
    raw = gzip.compress(payload) if body == "other data" else b"<html>503</html>"
    serve(monkeypatch, {TRAIN_IMAGES: raw})
    with pytest.raises(DataError) as info:
        fashion_mnist("train")
    message = str(info.value)
    assert TRAIN_IMAGES in message and "deleted" in message
    if body == "other data":
        assert sha(payload) in message and data.SHA256["train-images-idx3-ubyte"] in message
    else:
        assert "not a gzip file" in message
    assert list(cache_dir().iterdir()) == []  # neither the file nor its temp file is left


def test_offline_and_nowhere_found_names_the_three_ways(tmp_path, monkeypatch):
    monkeypatch.setenv("BNLAB_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataError) as info:
        fashion_mnist("test")
    message = str(info.value)
    for part in [
        "BNLAB_DATA",
        str(tmp_path / "empty"),
        "apt-get install dataset-fashion-mnist",
        URL,
        str(cache_dir()),
        "URLError",
        *data.FILES["train"],
        *data.FILES["test"],
    ]:
        assert part in message, f"{part!r} not in {message!r}"
    assert isinstance(info.value.__cause__, urllib.error.URLError)


def test_connection_lost_mid_download_leaves_no_partial_file(monkeypatch):
    class Broken(_Response):
        def read(self, size=-1):
            if self.tell():
                raise ConnectionResetError("connection reset by peer")
            return super().read(10)

    monkeypatch.setattr(data, "_open_url", lambda url: Broken(b"x" * 100))
    with pytest.raises(DataError, match="ConnectionResetError"):
        fashion_mnist("train")
    assert list(cache_dir().iterdir()) == []


# --- to_float and write_idx -----------------------------------------------------------------


def test_to_float_shape_dtype_range():
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    x = to_float(images)
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert torch.equal(x[:, 0], images.float() / 255)
    with pytest.raises(BNTypeError, match="uint8"):
        to_float(images.float())
    with pytest.raises(BNValueError, match=r"\(N, H, W\)"):
        to_float(images[0])


def test_write_idx_writes_the_idx_header(tmp_path):
    images = np.full((2, 3, 4), 7, dtype=np.int32)
    raw = gzip.decompress(write_idx(tmp_path / "i.gz", images).read_bytes())
    assert raw == struct.pack(">IIII", 2051, 2, 3, 4) + bytes([7] * 24)
    raw = gzip.decompress(write_idx(tmp_path / "l.gz", torch.tensor([1, 255])).read_bytes())
    assert raw == struct.pack(">II", 2049, 2) + bytes([1, 255])
    with pytest.raises(BNTypeError, match="integer"):
        write_idx(tmp_path / "f.gz", torch.zeros(2, 28, 28))
    with pytest.raises(BNValueError, match="0–255"):
        write_idx(tmp_path / "r.gz", torch.tensor([256]))
    with pytest.raises(BNValueError, match="dimensions"):
        write_idx(tmp_path / "d.gz", torch.zeros(2, 2, dtype=torch.uint8))


# --- the real dataset -----------------------------------------------------------------------


@pytest.mark.skipif(
    not (REAL_DIR / TRAIN_LABELS).exists(),
    reason=f"real Fashion-MNIST absent: {REAL_DIR} (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist(monkeypatch):
    assert REAL_DIR == DEFAULT_DEBIAN_DIR
    monkeypatch.setattr(data, "DEBIAN_DIR", REAL_DIR)  # found through the default search
    for split, n in [("train", 60_000), ("test", 10_000)]:
        assert find_data_dir(split) == REAL_DIR  # type: ignore[arg-type]
        images, labels = fashion_mnist(split)  # type: ignore[arg-type]
        assert images.shape == (n, 28, 28) and images.dtype == torch.uint8, split
        assert labels.shape == (n,) and labels.dtype == torch.int64, split
        assert labels.min() >= 0 and labels.max() <= 9
        assert torch.bincount(labels, minlength=10).tolist() == [n // 10] * 10, split
        assert fashion_mnist(split)[0] is images  # type: ignore[arg-type]  # cached, not re-read
    for name in (*data.FILES["train"], *data.FILES["test"]):
        digest = sha(gzip.decompress((REAL_DIR / name).read_bytes()))
        assert digest == data.SHA256[name.removesuffix(".gz")], name
