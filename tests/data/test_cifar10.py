from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
import torch

from dlx.core.errors import DataError
from dlx.data.cifar10 import CIFAR10, read_batch
from tests.data.formats import cifar_images, make_tar_gz, read_cifar_batch_raw, serve, write_cifar


@pytest.mark.parametrize("style", ["py2", "py3-str", "py3-bytes"])
def test_reads_batches_in_every_pickle_style(tmp_path, style):
    write_cifar(tmp_path, per_batch=6, style=style)
    data = CIFAR10(root=tmp_path, download=False).load()
    assert data.train.x.shape == (30, 3, 32, 32) and data.train.x.dtype == torch.uint8
    assert data.test.x.shape == (6, 3, 32, 32) and data.train.y.dtype == torch.int64
    assert data.scale == pytest.approx(1 / 255)
    # batch 1 comes first, pixels in R, G, B planes as written
    x1, y1 = cifar_images(6, seed=0)
    assert torch.equal(data.train.x[:6], torch.from_numpy(x1))
    assert data.train.y[:6].tolist() == y1.tolist()
    assert data.spec.class_names[0] == "airplane" and data.spec.num_classes == 10


def test_py2_batches_load_with_latin1_like_the_originals(tmp_path):
    folder = write_cifar(tmp_path, style="py2")
    raw = read_cifar_batch_raw(folder / "data_batch_1")  # the reference way to read them
    x, y = read_batch(folder / "data_batch_1")
    assert np.array_equal(x.reshape(len(x), -1), raw["data"]) and y.tolist() == raw["labels"]


def test_cache_is_used_on_the_second_load(tmp_path):
    write_cifar(tmp_path / "root")
    cache = tmp_path / "cache"
    first = CIFAR10(root=tmp_path / "root", download=False, cache_dir=cache)
    a = first.load()
    assert not first.cache_hit and len(list(cache.glob("cifar10-*.pt"))) == 1
    second = CIFAR10(root=tmp_path / "root", download=False, cache_dir=cache)
    b = second.load()
    assert second.cache_hit and torch.equal(a.train.x, b.train.x)


def test_missing_files_name_the_folder(tmp_path):
    with pytest.raises(DataError) as err:
        CIFAR10(root=tmp_path, download=False).load()
    msg = str(err.value)
    assert "cifar-10-batches-py" in msg and "data_batch_1" in msg and "\n" not in msg


def _corrupt(folder, how):
    path = folder / "data_batch_3"
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "list":
        path.write_bytes(pickle.dumps([1, 2, 3]))
    elif how == "cifar100":  # another data set's batch: fine_labels, no labels
        path.write_bytes(
            pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "fine_labels": [1, 2]})
        )
    elif how == "wrong-shape":
        path.write_bytes(pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [1, 2]}))
    elif how == "bad-label":
        path.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [1, 12]}))
    elif how == "code":  # a pickle that would run a command when loaded
        marker = folder / "pwned"
        path.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")


@pytest.mark.parametrize(
    "how, words",
    [
        ("truncated", "not a readable CIFAR-10 batch"),
        ("empty", "not a readable CIFAR-10 batch"),
        ("list", "holds a list"),
        ("cifar100", "not a CIFAR-10 batch"),
        ("wrong-shape", "expected uint8 [N, 3072]"),
        ("bad-label", "labels outside 0..9"),
        ("code", "os.system"),
    ],
)
def test_bad_batches_give_one_line_and_no_cache(tmp_path, how, words):
    folder = write_cifar(tmp_path / "root")
    _corrupt(folder, how)
    with pytest.raises(DataError) as err:
        CIFAR10(root=tmp_path / "root", download=False, cache_dir=tmp_path / "cache").load()
    msg = str(err.value)
    assert words in msg and "\n" not in msg and "data_batch_3" in msg
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())
    assert not (folder / "pwned").exists(), "the pickle ran code"


def test_read_only_root_is_left_untouched(tmp_path):
    root = tmp_path / "root"
    write_cifar(root)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    CIFAR10(root=root, download=False, cache_dir=tmp_path / "cache").load()
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    assert list((tmp_path / "cache").glob("cifar10-*.pt"))


@pytest.fixture
def cifar_mirror(tmp_path):
    built = tmp_path / "built"
    write_cifar(built)
    site = tmp_path / "site"
    site.mkdir()
    archive = make_tar_gz(
        site / "cifar-10-python.tar.gz", built / "cifar-10-batches-py", "cifar-10-batches-py"
    )
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    with serve(site) as url:
        yield url, md5


def test_download_extracts_the_archive_checked_by_md5(tmp_path, cifar_mirror, monkeypatch):
    url, md5 = cifar_mirror
    monkeypatch.setattr(CIFAR10, "mirrors", (url + "404/", url))
    monkeypatch.setattr(CIFAR10, "archive_md5", md5)
    root = tmp_path / "data"
    data = CIFAR10(root=root, download=True).load()
    assert len(data.train) == 30 and len(data.test) == 6
    assert (root / "cifar-10-batches-py" / "test_batch").is_file()
    assert not list(root.glob(".*partial")), "a temp extraction folder was left"


def test_download_with_wrong_md5_extracts_nothing(tmp_path, cifar_mirror, monkeypatch):
    url, _ = cifar_mirror
    monkeypatch.setattr(CIFAR10, "mirrors", (url,))
    monkeypatch.setattr(CIFAR10, "archive_md5", "0" * 32)
    with pytest.raises(DataError, match="checksum mismatch"):
        CIFAR10(root=tmp_path / "data", download=True).load()
    assert not (tmp_path / "data" / "cifar-10-batches-py").exists()
