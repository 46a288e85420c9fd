"""The data of the slow listings, read by dlx's own loaders (so every contender trains on
the same arrays): CIFAR-10 (6-12), IMDB as token ids (6-14), MNIST digits 0-4 (6-15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("DLX_CACHE_DIR", Path.home() / ".cache" / "dlx"))


def cifar_root(root: str) -> Path:
    """A `cifar-10-batches-py` folder: the root's, or built once from the shared JPEG copy."""
    if Path(root, "cifar-10-batches-py").is_dir():
        return Path(root)
    dest = CACHE / "cifar10-built"
    if not (dest / "cifar-10-batches-py" / "test_batch").is_file():
        subprocess.run([sys.executable, str(Path(root, "cifar10", "build.py")), str(dest)],
                       check=True)  # fmt: skip
    return dest


def cifar_arrays(root: str) -> tuple[np.ndarray, np.ndarray]:
    from dlx.data.cifar10 import CIFAR10

    train, _ = CIFAR10(root=cifar_root(root), download=False, cache_dir=CACHE).read()
    return train.x.numpy(), train.y.numpy()


def imdb_arrays(root: str) -> tuple[np.ndarray, np.ndarray]:
    """25,000 training reviews as int64 ids [n, 80], the book's 20,000 words (6-14)."""
    from dlx.data.imdb import IMDB

    train, _ = IMDB(root=root, download=False, num_words=20000, maxlen=80, cache_dir=CACHE).read()
    return train.x.numpy(), train.y.numpy()


def digits_0_4(root: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's training digits 0-4 (6-15's first stage)."""
    from dlx.data.mnist import MNIST

    train, _ = MNIST(root=root, download=False, cache_dir=CACHE).read()
    keep = train.y.numpy() < 5
    return train.x.numpy()[keep], train.y.numpy()[keep]


LOADERS = {"cnn_cifar": cifar_arrays, "lstm": imdb_arrays, "transfer": digits_0_4}
