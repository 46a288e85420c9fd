from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from dlx.core.errors import DataError
from dlx.data.idx import read_idx
from dlx.data.mnist import MNIST
from tests.conftest import make_mnist, write_idx
from tests.data.formats import serve


def test_reads_idx_gz_in_torchvision_layout(mnist_root, tmp_path):
    data = MNIST(root=mnist_root, download=False, cache_dir=tmp_path / "cache").load()
    assert data.train.x.shape == (200, 1, 28, 28) and data.train.x.dtype == torch.uint8
    assert data.test.x.shape == (100, 1, 28, 28)
    assert data.train.y.dtype == torch.int64 and int(data.train.y.max()) <= 9
    assert data.scale == pytest.approx(1 / 255)
    # the fixture lights rows 2*label..2*label+2 of each image
    img, label = data.train.x[0, 0], int(data.train.y[0])
    assert (img[2 * label] == 255).all()


def test_reads_uncompressed_copies_too(mnist_root, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in (mnist_root / "MNIST" / "raw").glob("*.gz"):
        with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    a = MNIST(root=tmp_path, download=False).load()
    b = MNIST(root=mnist_root, download=False).load()
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)


def test_cache_goes_to_cache_dir_not_data_root(tmp_path):
    root = make_mnist(tmp_path / "data")
    before = sorted(p.name for p in root.rglob("*"))
    cache = tmp_path / "cache"
    first = MNIST(root=root, download=False, cache_dir=cache).load()
    assert sorted(p.name for p in root.rglob("*")) == before  # root untouched
    entries = list(cache.glob("mnist-*.pt"))
    assert len(entries) == 1
    second = MNIST(root=root, download=False, cache_dir=cache).load()
    assert torch.equal(first.train.x, second.train.x)


def test_cache_is_rebuilt_when_files_change(tmp_path):
    root = make_mnist(tmp_path / "data", seed=1)
    cache = tmp_path / "cache"
    a = MNIST(root=root, download=False, cache_dir=cache).load()
    make_mnist(root, n_train=120, seed=2)
    b = MNIST(root=root, download=False, cache_dir=cache).load()
    assert len(a.train) == 200 and len(b.train) == 120


def test_corrupt_cache_entry_is_rebuilt(tmp_path):
    root = make_mnist(tmp_path / "data")
    cache = tmp_path / "cache"
    MNIST(root=root, download=False, cache_dir=cache).load()
    entry = next(cache.glob("mnist-*.pt"))
    entry.write_bytes(b"not a checkpoint")
    data = MNIST(root=root, download=False, cache_dir=cache).load()
    assert len(data.train) == 200


def test_missing_files_without_download_name_the_path(tmp_path):
    with pytest.raises(DataError) as err:
        MNIST(root=tmp_path, download=False).load()
    msg = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in msg and "train-images-idx3-ubyte.gz" in msg
    assert "DLX_DATA_DIR" in msg


def _corrupt(root: Path, how: str) -> None:
    path = root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    if how == "truncated-gzip":
        path.write_bytes(path.read_bytes()[:200])
    elif how == "not-gzip":
        path.write_bytes(b"hello world, not a gzip file at all")
    elif how == "bad-magic":
        write_idx(path, np.zeros((4, 28, 28), np.uint8))
        data = bytearray(gzip.decompress(path.read_bytes()))
        data[2] = 0x42
        path.write_bytes(gzip.compress(bytes(data)))
    elif how == "wrong-size":
        payload = gzip.decompress(path.read_bytes())
        path.write_bytes(gzip.compress(payload[:-100]))
    elif how == "count-mismatch":
        write_idx(path, np.zeros((7, 28, 28), np.uint8))


@pytest.mark.parametrize(
    "how, words",
    [
        ("truncated-gzip", "not a readable gzip"),
        ("not-gzip", "not a readable gzip"),
        ("bad-magic", "bad magic"),
        ("wrong-size", "needs"),
        ("count-mismatch", "7 images but 200 labels"),
    ],
)
def test_corrupt_files_give_one_clear_error(tmp_path, how, words):
    root = make_mnist(tmp_path / "data")
    _corrupt(root, how)
    with pytest.raises(DataError) as err:
        MNIST(root=root, download=False, cache_dir=tmp_path / "cache").load()
    assert words in str(err.value) and "\n" not in str(err.value)
    assert not list((tmp_path / "cache").glob("*")), "a failed load left a cache entry"


def test_read_idx_roundtrip(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.idx", arr, gz=False)
    assert np.array_equal(read_idx(tmp_path / "a.idx", 3), arr)
    with pytest.raises(DataError, match="3 dimensions, expected 1"):
        read_idx(tmp_path / "a.idx", 1)


def test_spec_needs_no_files(tmp_path):
    spec = MNIST(root=tmp_path / "nothing", download=False).spec
    assert spec.input_shape == (1, 28, 28) and spec.num_classes == 10


@pytest.fixture
def mirror(tmp_path, mnist_root):
    """A local HTTP mirror on the loopback serving the fixture files, and their md5s."""
    folder = tmp_path / "mirror"
    shutil.copytree(mnist_root / "MNIST" / "raw", folder)
    md5 = {p.stem: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.glob("*.gz")}
    with serve(folder) as url:
        yield url, md5


def test_download_fetches_missing_files_and_checks_md5(tmp_path, mirror, monkeypatch):
    url, md5 = mirror
    # a mirror that answers 404 comes first
    monkeypatch.setattr(MNIST, "mirrors", (url + "missing/", url))
    monkeypatch.setattr(MNIST, "files_md5", md5)
    data = MNIST(root=tmp_path / "data", download=True).load()
    assert len(data.train) == 200
    assert sorted(p.name for p in (tmp_path / "data" / "MNIST" / "raw").iterdir()) == sorted(
        f"{stem}.gz" for stem in md5
    )


def test_download_with_bad_checksum_fails_and_keeps_nothing(tmp_path, mirror, monkeypatch):
    url, md5 = mirror
    monkeypatch.setattr(MNIST, "mirrors", (url,))
    monkeypatch.setattr(MNIST, "files_md5", {k: "0" * 32 for k in md5})
    with pytest.raises(DataError, match=r"could not download MNIST file .*checksum"):
        MNIST(root=tmp_path / "data", download=True).load()
    assert not list((tmp_path / "data").rglob("*.gz"))
