"""Files dlx reads that are not what they should be: a tampered or foreign data cache, a torch
file that is not a dlx checkpoint, a pickle payload in a checkpoint, cache or .npz, and an
image that declares more pixels than it is safe to decode.

Each goes through the real CLI: an unusable cache is rebuilt with one warning; everything
else is refused with one `error:` line, and no payload ever runs.
"""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dlx.core.data import Spec
from dlx.core.errors import DataError
from dlx.data.cache import Field, Layout, split_fields
from dlx.data.image_folder import ImageFolder
from dlx.engine.checkpoint import CheckpointError, load_checkpoint
from dlx.models.mlp import MLP
from tests.conftest import make_mnist, run_dlx
from tests.data.formats import write_cifar, write_image_folder, write_imdb_jsonl
from tests.runs import resave


class Evil:
    """Unpickling this runs `touch <marker>`: the marker says whether a payload ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def error_line(out) -> str:
    """The one `error: ` line of a failed command (asserting there is exactly one)."""
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode != 0, out.stdout[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """One environment for the module's runs (the fixtures below share it)."""
    base = tmp_path_factory.mktemp("env")
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    env.update(
        DLX_CACHE_DIR=str(base / "cache"),
        DLX_DATA_DIR=str(base / "no-data"),
        DLX_OUTPUT_DIR=str(base / "outputs"),
        PYTHONUNBUFFERED="1",
    )
    return env


# -- the data cache --------------------------------------------------------------------------

MNIST_RUN = ("debug=smoke", "dataset=mnist", "dataset.download=false", "viz.enabled=false")


@pytest.fixture(scope="module")
def mnist_entry(mnist_root, env, tmp_path_factory) -> Path:
    """A good MNIST cache entry, written by `dlx data` (kept aside; tests tamper copies)."""
    cache = tmp_path_factory.mktemp("mnist-cache")
    env = {**env, "DLX_CACHE_DIR": str(cache)}
    out = run_dlx("data", "dataset=mnist", f"dataset.root={mnist_root}", env=env)
    assert out.returncode == 0, out.stderr
    (entry,) = cache.glob("mnist-*.pt")
    return entry


def _tamper(how: str, good: dict[str, torch.Tensor], path: Path, marker: Path) -> str:
    """Write a bad entry at `path`; returns words the warning must contain."""
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:1500])
        return "truncated or corrupt"
    bad = dict(good)
    if how == "missing key":
        del bad["test_y"]
        words = "missing keys test_y"
    elif how == "mismatched lengths":
        bad["train_y"] = bad["train_y"][:5]
        words = "train_y has 5 samples but the other train tensors 200"
    else:  # a pickle payload where a tensor should be
        bad["train_x"] = Evil(marker)
        words = "holds Python objects (posix.system)"
    torch.save(bad, path)
    return words


@pytest.mark.parametrize("how", ["truncated", "missing key", "mismatched lengths", "payload"])
def test_unusable_cache_is_rebuilt_with_one_warning(how, mnist_root, mnist_entry, env, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    path = cache / mnist_entry.name  # the entry this run looks up: same files, same key
    shutil.copy(mnist_entry, path)
    good = torch.load(mnist_entry, weights_only=True)
    marker = tmp_path / "PWNED"
    words = _tamper(how, good, path, marker)

    out = run_dlx(
        "train", *MNIST_RUN, f"dataset.root={mnist_root}", f"hydra.run.dir={tmp_path / 'run'}",
        env={**env, "DLX_CACHE_DIR": str(cache)}, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert not marker.exists(), "the pickle payload ran"
    warnings = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("cache ")]
    assert len(warnings) == 1, out.stdout
    assert warnings[0].startswith(f"cache {path} was unusable (") and words in warnings[0]
    assert warnings[0].endswith("); rebuilt it from the source data")
    assert "Traceback" not in out.stderr
    rebuilt = torch.load(path, weights_only=True)  # the rebuilt entry is the good one
    assert rebuilt.keys() == good.keys()
    assert all(torch.equal(rebuilt[k], good[k]) for k in good)


def test_unusable_cache_that_cannot_be_rebuilt_names_the_file(env, tmp_path):
    root = make_mnist(tmp_path / "data")
    cache = tmp_path / "cache"
    out = run_dlx("data", "dataset=mnist", f"dataset.root={root}",
                  env={**env, "DLX_CACHE_DIR": str(cache)})  # fmt: skip
    assert out.returncode == 0, out.stderr
    (entry,) = cache.glob("mnist-*.pt")
    entry.write_bytes(b"junk")
    # The source changes but keeps its size and mtime (the cache key): the rebuild fails.
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    st = images.stat()
    images.write_bytes(b"\0" * st.st_size)
    os.utime(images, ns=(st.st_atime_ns, st.st_mtime_ns))

    out = run_dlx("data", "dataset=mnist", f"dataset.root={root}",
                  env={**env, "DLX_CACHE_DIR": str(cache)})  # fmt: skip
    line = error_line(out)
    assert str(images) in line and f"the cache {entry} is unusable" in line
    assert "delete it" in line


def _x(*shape: int, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    return torch.zeros(shape or (2, 1, 2, 2), dtype=dtype)


def _y(*labels: int) -> torch.Tensor:
    return torch.tensor(labels or (0, 0))


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (torch.zeros(3), "it holds a Tensor, not a dict"),
        ({"train_x": _x(), "train_y": _y(), "extra": _y()}, "unexpected keys extra"),
        ({"train_x": _x(), "train_y": _y().float()}, "train_y is torch.float32, not torch.int64"),
        ({"train_x": _x(dtype=torch.float32), "train_y": _y()}, "train_x is torch.float32"),
        ({"train_x": _x(2, 1, 3, 2), "train_y": _y()}, "expected ['*', 1, 2, 2]"),
        ({"train_x": _x(), "train_y": _y(0, 3)}, "train_y holds values 0..3, outside 0..2"),
        ({"train_x": _x(), "train_y": _y(0)}, "train_y has 1 samples but the other train"),
        ({"train_x": _x(), "train_y": _y(), "test_x": _x()}, "missing keys test_y"),
        ({"train_x": _x()}, "missing keys train_y"),
        ({"train_x": _x(), "train_y": "a string"}, "train_y is a str, not a tensor"),
    ],
)
def test_cache_layout_names_what_does_not_fit(entry, words):
    fields = split_fields(("train", "test"), Field(torch.uint8, (1, 2, 2)), num_classes=3)
    problem = Layout(fields, optional=("test_x", "test_y")).problem(entry)
    assert problem is not None and words in problem


def test_cache_layout_accepts_a_good_entry():
    fields = split_fields(("train",), Field(torch.uint8, (1, 2, 2)), num_classes=3)
    assert Layout(fields).problem({"train_x": _x(), "train_y": _y(0, 2)}) is None


def _dataset(kind: str, root: Path) -> Callable[[], Any]:
    """Tiny files in a cached data set's real format; returns how to open the data set."""
    from dlx.data.cifar10 import CIFAR10
    from dlx.data.imdb import IMDB
    from dlx.data.mnist import MNIST
    from dlx.data.text_csv import TextCSV

    cache = {"cache_dir": root / "cache"}
    if kind == "mnist":
        data = make_mnist(root / "data", 20, 10)
        return lambda: MNIST(root=data, download=False, **cache)
    if kind == "cifar10":
        data = write_cifar(root / "data").parent
        return lambda: CIFAR10(root=data, download=False, **cache)
    if kind == "imdb":
        data = write_imdb_jsonl(root / "data")
        return lambda: IMDB(root=data, download=False, maxlen=5, **cache)
    if kind == "text_csv":
        path = root / "a.csv"
        path.write_text("text,label\ngood fun,pos\nbad,neg\nso good,pos\ndull,neg\nok,pos\n")
        return lambda: TextCSV(path=path, text_column="text", label_column="label", **cache)
    folders = root / "imgs"
    if kind == "image_folder (train/test)":
        write_image_folder(folders / "train", {"a": 3, "b": 2})
        write_image_folder(folders / "test", {"a": 1, "b": 1})
    else:
        write_image_folder(folders, {"a": 3, "b": 2})
    return lambda: ImageFolder(root=folders, image_size=8, test_size=0.4, **cache)


@pytest.mark.parametrize(
    "kind", ["mnist", "cifar10", "imdb", "text_csv", "image_folder (train/test)", "image_folder"]
)
def test_every_cached_data_set_reads_back_its_own_entry(kind, tmp_path, caplog):
    # A layout that did not fit what the data set builds would rebuild it on every run.
    make = _dataset(kind, tmp_path)
    first = make().load()
    again = make()
    with caplog.at_level("WARNING"):
        second = again.load()
    assert again.cache_hit and not caplog.records
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1
    assert torch.equal(first.train.x, second.train.x)


# -- torch files that are not dlx checkpoints ------------------------------------------------


@pytest.fixture(scope="module")
def trained(env, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("trained")
    out = run_dlx("train", "debug=smoke", "model.hidden=[32]", "viz.enabled=false",
                  f"hydra.run.dir={run_dir}", env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return run_dir


def _foreign(kind: str, state: dict[str, torch.Tensor]):
    """Objects that torch.load(weights_only=True) reads but that are no dlx checkpoint."""
    return {
        "bare state_dict": state,
        "tensor": torch.zeros(3),
        "list": [1, 2, 3],
        "model is a tensor": {"model": torch.zeros(3)},
        "config is a string": {"model": state, "config": "a string"},
        "model holds strings": {"model": {"weight": "x"}, "config": {}},
        "model has int keys": {"model": {0: torch.zeros(1)}},
        "history holds strings": {"model": state, "history": ["epoch 1"]},
    }[kind]


FOREIGN_WORDS = {
    "bare state_dict": "no 'model' entry",
    "tensor": "it holds a Tensor, not a dict",
    "list": "it holds a list, not a dict",
    "model is a tensor": "'model' is a Tensor, not a state dict",
    "config is a string": "'config' is a str, not a dict",
    "model holds strings": "model['weight'] is a str, not a tensor",
    "model has int keys": "'model' has the key 0 (int), not a parameter name",
    "history holds strings": "'history' is not a list of dicts",
}


@pytest.mark.parametrize("kind", list(FOREIGN_WORDS))
def test_load_checkpoint_refuses_a_torch_file_that_is_not_a_dlx_checkpoint(kind, tmp_path):
    state = MLP(Spec((1, 8, 8), 10), hidden=[4]).state_dict()
    path = tmp_path / "foreign.pt"
    torch.save(_foreign(kind, state), path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert f"{path} is not a dlx checkpoint ({FOREIGN_WORDS[kind]}" in str(err.value)
    assert "\n" not in str(err.value)


def test_load_checkpoint_accepts_what_dlx_train_wrote(trained):
    for name in ("last.pt", "best.pt"):
        assert load_checkpoint(trained / "checkpoints" / name)["config"]["trainer"]


@pytest.mark.parametrize("kind", ["bare state_dict", "config is a string"])
def test_eval_refuses_a_torch_file_that_is_not_a_dlx_checkpoint(kind, trained, env, tmp_path):
    state = torch.load(trained / "checkpoints" / "last.pt", weights_only=True)["model"]
    path = tmp_path / "foreign.pt"
    torch.save(_foreign(kind, state), path)
    out = run_dlx("eval", f"ckpt={path}", f"hydra.run.dir={tmp_path / 'ev'}", env=env)
    line = error_line(out)
    assert f"{path} is not a dlx checkpoint ({FOREIGN_WORDS[kind]}" in line
    assert not (tmp_path / "ev").exists()


def _run_copy(trained: Path, tmp_path: Path, last: object) -> Path:
    """A copy of the trained run whose checkpoints/last.pt holds `last`."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    torch.save(last, run / "checkpoints" / "last.pt")
    return run


@pytest.mark.parametrize("kind", ["bare state_dict", "config is a string"])
def test_viz_refuses_a_run_whose_checkpoint_is_not_a_dlx_checkpoint(kind, trained, env, tmp_path):
    state = torch.load(trained / "checkpoints" / "last.pt", weights_only=True)["model"]
    run = _run_copy(trained, tmp_path, _foreign(kind, state))
    line = error_line(run_dlx("viz", f"run_dir={run}", env=env))
    assert "last.pt is not a dlx checkpoint" in line and FOREIGN_WORDS[kind] in line
    assert not (run / "plots").exists()


@pytest.mark.parametrize("command", ["eval", "viz"])
def test_a_pickle_payload_checkpoint_never_runs(command, trained, env, tmp_path):
    marker = tmp_path / "PWNED"
    ckpt = torch.load(trained / "checkpoints" / "last.pt", weights_only=True)
    ckpt["history"] = [Evil(marker)]
    if command == "eval":
        torch.save(ckpt, tmp_path / "evil.pt")
        out = run_dlx("eval", f"ckpt={tmp_path / 'evil.pt'}", env=env, cwd=tmp_path)
    else:
        out = run_dlx("viz", f"run_dir={_run_copy(trained, tmp_path, ckpt)}", env=env, cwd=tmp_path)
    assert "holds Python objects (posix.system)" in error_line(out)
    assert not marker.exists(), "the pickle payload ran"


RESUME = ("debug=smoke", "model.hidden=[32]", "viz.enabled=false")


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("bare state_dict", "is not a dlx checkpoint (no 'model' entry"),
        ("weights only", "holds weights only (no optimizer state)"),
        ("damaged state", "is not a complete dlx checkpoint (its run state does not read"),
    ],
)
def test_resume_refuses_what_it_cannot_continue(kind, words, trained, env, tmp_path):
    ckpt = torch.load(trained / "checkpoints" / "last.pt", weights_only=True)
    obj = {
        "bare state_dict": ckpt["model"],
        "weights only": {"model": ckpt["model"]},
        "damaged state": {**ckpt, "state": {"batch": 0}},  # its other entries are gone
    }[kind]
    resave(obj, tmp_path / "resume.pt")  # a valid checksum: the damage is in what was written
    out = run_dlx("train", *RESUME, f"trainer.resume={tmp_path / 'resume.pt'}",
                  f"hydra.run.dir={tmp_path / 'run'}", env=env)  # fmt: skip
    line = error_line(out)
    assert words in line and str(tmp_path / "resume.pt") in line
    assert not list((tmp_path / "run").rglob("*.pt")), "a checkpoint was written"


def test_a_misspelt_key_added_with_plus_is_refused_before_any_work(env, tmp_path):
    out = run_dlx("train", "debug=smoke", "+trainer.max_epoch=3",
                  f"hydra.run.dir={tmp_path / 'run'}", env=env)  # fmt: skip
    line = error_line(out)
    assert line == (
        "error: trainer.max_epoch is not a trainer setting (did you mean trainer.max_epochs?)"
    )
    assert not (tmp_path / "run").exists() and "dlx train:" not in out.stdout


# -- scikit-learn runs' .npz files -----------------------------------------------------------


@pytest.fixture(scope="module")
def sklearn_run(env, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("sklearn")
    out = run_dlx("train", "model=sklearn_logistic", "viz.enabled=false",
                  f"hydra.run.dir={run_dir}", env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (run_dir / "predictions.npz").is_file() and (run_dir / "model.npz").is_file()
    return run_dir


def _evil_npz(path: Path, marker: Path) -> None:
    with np.load(path) as saved:
        names = list(saved.files)
    payload = np.array([Evil(marker)], dtype=object)
    np.savez(path, **{name: payload for name in names})  # allow_pickle's default: pickled


def test_viz_refuses_pickled_predictions_without_running_them(sklearn_run, env, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(sklearn_run, run)
    marker = tmp_path / "PWNED"
    for name in ("predictions.npz", "model.npz"):
        _evil_npz(run / name, marker)
    line = error_line(run_dlx("viz", f"run_dir={run}", env=env, cwd=tmp_path))
    assert f"{run / 'predictions.npz'} holds pickled Python objects" in line
    assert not marker.exists(), "the pickle payload ran"


def test_viz_skips_the_figures_of_a_pickled_model_npz(sklearn_run, env, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(sklearn_run, run)
    marker = tmp_path / "PWNED"
    _evil_npz(run / "model.npz", marker)
    out = run_dlx("viz", f"run_dir={run}", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (run / "plots" / "confusion_matrix.png").is_file()  # predictions.npz is fine
    skipped = [ln for ln in out.stdout.splitlines() if "model.npz" in ln]
    assert len(skipped) == 1 and "holds pickled Python objects" in skipped[0]
    assert not marker.exists() and "Traceback" not in out.stderr


# -- image folders ---------------------------------------------------------------------------


def write_bomb_png(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit PNG of width x height black pixels: a few KB that decode to hundreds of
    megabytes (written by hand; Pillow would build the whole image in memory first)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    z = zlib.compressobj(9)
    pixels = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
    return path


def test_image_folder_refuses_a_decompression_bomb(env, tmp_path):
    # 169M pixels: past PIL's MAX_IMAGE_PIXELS (89M), where it only warns (it refuses at 2x).
    side = 13000
    root = write_image_folder(tmp_path / "imgs", {"a": 4, "b": 4})
    bomb = write_bomb_png(root / "b" / "bomb.png", side, side)
    assert bomb.stat().st_size < 1 << 20
    cache = tmp_path / "cache"
    out = run_dlx(
        "train", "debug=smoke", "dataset=image_folder", f"dataset.root={root}",
        "dataset.image_size=8", "viz.enabled=false", f"hydra.run.dir={tmp_path / 'run'}",
        env={**env, "DLX_CACHE_DIR": str(cache)}, timeout=60,
    )  # fmt: skip
    line = error_line(out)
    assert f"refused image {bomb}" in line and "decompression bomb" in line
    assert f"{side * side} pixels" in line
    assert not list(cache.glob("*.pt")), "a cache was written"


def test_image_folder_refuses_a_bomb_past_pils_hard_limit(tmp_path):
    # 196M pixels: over twice MAX_IMAGE_PIXELS, where PIL raises DecompressionBombError.
    root = write_image_folder(tmp_path / "imgs", {"a": 2, "b": 2})
    bomb = write_bomb_png(root / "a" / "bomb.png", 14000, 14000)
    with pytest.raises(DataError) as err:
        ImageFolder(root=root, image_size=8, cache_dir=tmp_path / "cache").load()
    assert f"refused image {bomb}: Image size (196000000 pixels)" in str(err.value)
    assert not (tmp_path / "cache").exists()
