"""Writers of tiny data sets in the real published formats, and a loopback file server."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import struct
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"]  # fmt: skip


class Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Pickles as Python 2 did: bytes as py2 `str`, numpy under `numpy.core.multiarray`
    (the way the official CIFAR-10 batches and ../shared/data/cifar10/build.py write)."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def _save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str

    def save_global(self, obj, name=None):
        if getattr(obj, "__name__", None) == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def cifar_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n images [n, 3, 32, 32] uint8 whose class shows in their mean colour."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.integers(0, 20, (n, 3, 32, 32)).astype(np.uint8)
    x[:, 0] += (y * 20).astype(np.uint8)[:, None, None]
    return x, y


def write_cifar(root: Path, per_batch: int = 6, style: str = "py2") -> Path:
    """`root/cifar-10-batches-py/` with 5 training batches, a test batch and batches.meta.

    style: "py2" (as the originals), "py3-str" (protocol 2, str keys), "py3-bytes"
    (protocol 4, bytes keys).
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for seed, name in enumerate(names):
        x, y = cifar_images(per_batch, seed)
        batch = {
            "batch_label": name,
            "labels": [int(v) for v in y],
            "data": x.reshape(per_batch, 3072),
            "filenames": [f"{name}_{i}.png" for i in range(per_batch)],
        }
        _dump(folder / name, batch, style)
    meta = {"label_names": CIFAR_CLASSES, "num_cases_per_batch": per_batch, "num_vis": 3072}
    _dump(folder / "batches.meta", meta, style)
    return folder


def _dump(path: Path, obj: dict, style: str) -> None:
    def to_bytes(v):
        if isinstance(v, str):
            return v.encode()
        if isinstance(v, list):
            return [to_bytes(i) for i in v]
        return v

    with open(path, "wb") as f:
        if style == "py2":
            Py2Pickler(f, protocol=2).dump({k.encode(): to_bytes(v) for k, v in obj.items()})
        elif style == "py3-str":
            pickle.dump(obj, f, protocol=2)
        else:
            pickle.dump({k.encode(): v for k, v in obj.items()}, f, protocol=4)


def read_cifar_batch_raw(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


# -- IMDB ---------------------------------------------------------------------------------

# Each split: (id, rating, text); negatives use "awful" words, positives "great" ones.
IMDB_REVIEWS = {
    "train": {
        "neg": [(10, 1, "Awful film.<br />Truly AWFUL, boring plot"), (2, 3, "boring and awful")],
        "pos": [(0, 9, "Great film, great cast"), (7, 10, "A great, wonderful film. Don't miss")],
    },
    "test": {
        "neg": [(3, 2, "awful awful unseenword"), (1, 4, "boring")],
        "pos": [(5, 8, "wonderful"), (4, 7, "great great film")],
    },
}


def write_aclimdb(root: Path, reviews: dict = IMDB_REVIEWS) -> Path:
    for split, polarities in reviews.items():
        for polarity, items in polarities.items():
            folder = root / "aclImdb" / split / polarity
            folder.mkdir(parents=True, exist_ok=True)
            for rid, rating, text in items:
                (folder / f"{rid}_{rating}.txt").write_text(text, encoding="utf-8")
    return root


def imdb_records(split: str, reviews: dict = IMDB_REVIEWS) -> list[dict]:
    """The split as the jsonl copy orders it: negatives then positives, each by id."""
    out = []
    for label, polarity in enumerate(("neg", "pos")):
        for _, _, text in sorted(reviews[split][polarity]):
            out.append({"text": text, "label": label})
    return out


def write_jsonl_gz(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return path


def write_imdb_jsonl(root: Path, reviews: dict = IMDB_REVIEWS) -> Path:
    for split in ("train", "test"):
        write_jsonl_gz(root / "imdb" / f"{split}.jsonl.gz", imdb_records(split, reviews))
    return root


# -- archives and a mirror ----------------------------------------------------------------


def make_tar_gz(path: Path, source: Path, arcname: str) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(source, arcname=arcname)
    return path


def add_tar_member(tar: tarfile.TarFile, name: str, data: bytes = b"x", **attrs) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in attrs.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data) if info.isfile() else None)


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """An HTTP server on the loopback serving `folder`; yields its base URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# -- image folders --------------------------------------------------------------------------


def write_image_folder(root: Path, classes: dict[str, int], size=(8, 8), fmt: str = "png"):
    """root/<class>/<i>.<fmt>: each class a flat colour (class index * 40 in red)."""
    from PIL import Image

    for index, (name, count) in enumerate(classes.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            img = Image.new("RGB", size, (index * 40, 100, 200 - i))
            img.save(folder / f"{i:04d}.{fmt}")
    return root


def write_torch_home(root: Path, arch: str = "resnet18", seed: int = 0) -> Path:
    """A TORCH_HOME whose cache holds `arch`'s DEFAULT weights, randomly initialised, in the
    file torchvision reads them from, $TORCH_HOME/hub/checkpoints/<the URL's file name> (so
    nothing is downloaded); returns that file."""
    import torch
    import torchvision

    from dlx.models.weights import Weights, build_network

    named = torchvision.models.get_model_weights(arch).DEFAULT
    torch.manual_seed(seed)
    net = build_network(Weights(arch, like=named))
    path = root / "hub" / "checkpoints" / named.url.rsplit("/", 1)[-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path
