"""The book's listing 6-4: the 8x8 digits plus copies nudged 1 px up, left, right and down.

1,797 x 5 = 8,985 samples of 64 features, scaled per feature the way the book does it,
`(X - X.min(0)) / (X.max(0) + 0.0001)` (so values lie in [0, 1)), then split with
`train_test_split(test_size=0.2, random_state=2017)` -> 7,188 / 1,797. Stored as float32.
"""

from __future__ import annotations

import numpy as np
import torch

from dlx.core.data import Spec, Split
from dlx.data.base import Dataset, check_test_size
from dlx.data.digits import book_split, load_digits_arrays


def nudge(images: np.ndarray) -> np.ndarray:
    """[N, 8, 8] -> [5N, 8, 8]: the originals, then shifted up, left, right, down by 1 px.

    Equal to the book's `scipy.ndimage.convolve(x, mode='constant', weights=w)` with its four
    one-hot 3x3 kernels, in the same order (a test checks it against scipy); vacated pixels
    are 0.
    """
    up, left, right, down = (np.zeros_like(images) for _ in range(4))
    up[:, :-1, :] = images[:, 1:, :]
    left[:, :, :-1] = images[:, :, 1:]
    right[:, :, 1:] = images[:, :, :-1]
    down[:, 1:, :] = images[:, :-1, :]
    return np.concatenate([images, up, left, right, down])


def book_scale(x: np.ndarray) -> np.ndarray:
    """The book's per-feature scaling (not quite min-max: it divides by max + 1e-4)."""
    return (x - np.min(x, 0)) / (np.max(x, 0) + np.float32(0.0001))


class DigitsNudged(Dataset):
    name = "digits_nudged"
    scale = 1.0  # already floats in [0, 1)

    def __init__(self, test_size: float = 0.2, random_state: int = 2017, **kwargs) -> None:
        super().__init__(**kwargs)
        check_test_size(test_size)
        self.test_size = test_size
        self.random_state = random_state

    @property
    def source_spec(self) -> Spec:
        return Spec(input_shape=(64,), num_classes=10,
                    class_names=tuple(str(i) for i in range(10)))  # fmt: skip

    def read(self) -> tuple[Split, Split]:
        images, labels = load_digits_arrays()
        x = book_scale(nudge(images.astype(np.float32)).reshape(-1, 64)).astype(np.float32)
        y = np.concatenate([labels] * 5).astype(np.int64)
        train_idx, test_idx = book_split(len(y), self.test_size, self.random_state)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        return Split(xt[train_idx], yt[train_idx]), Split(xt[test_idx], yt[test_idx])
