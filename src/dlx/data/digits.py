"""scikit-learn's bundled 8x8 digits (1,797 images), split as in the book."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import torch

from dlx.core.data import Spec, Split
from dlx.data.base import Dataset, check_test_size


def digits_file() -> Path | None:
    """The CSV that scikit-learn ships, located without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images [1797, 8, 8] uint8 0..16, labels [1797]) as `sklearn.datasets.load_digits`."""
    path = digits_file()
    if path is None:  # an unusual install layout: take the slow, sure way
        from sklearn.datasets import load_digits

        d = load_digits()
        return d.images.astype(np.uint8), d.target
    raw = np.loadtxt(path, delimiter=",", dtype=np.float64)
    return raw[:, :-1].astype(np.uint8).reshape(-1, 8, 8), raw[:, -1].astype(np.int64)


def book_split(n: int, test_size: float, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """The indices `train_test_split(test_size=..., random_state=...)` picks (no stratify).

    Written out because importing scikit-learn's model_selection costs ~2 s of start-up;
    a test checks it against scikit-learn.
    """
    n_test = math.ceil(test_size * n)
    perm = np.random.RandomState(random_state).permutation(n)
    return perm[n_test:], perm[:n_test]


class Digits(Dataset):
    """Pixels are 0..16; kept as uint8 and scaled by 1/16 per batch.

    The book's split: `train_test_split(test_size=0.2, random_state=2017)` -> 1437 / 360.
    """

    name = "digits"
    scale = 1.0 / 16.0
    pixel_max = 16

    def __init__(self, test_size: float = 0.2, random_state: int = 2017, **kwargs) -> None:
        super().__init__(**kwargs)
        check_test_size(test_size)
        self.test_size = test_size
        self.random_state = random_state

    @property
    def source_spec(self) -> Spec:
        return Spec(
            input_shape=(1, 8, 8), num_classes=10, class_names=tuple(str(i) for i in range(10))
        )

    def read(self) -> tuple[Split, Split]:
        images, labels = load_digits_arrays()
        train_idx, test_idx = book_split(len(labels), self.test_size, self.random_state)
        x = torch.from_numpy(images).unsqueeze(1)
        y = torch.from_numpy(labels).long()
        return Split(x[train_idx], y[train_idx]), Split(x[test_idx], y[test_idx])
