from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import convolve
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from dlx.data.digits_nudged import DigitsNudged


def book_6_4():
    """The book's listing 6-4, as printed (with Python 3 syntax)."""

    def nudge_dataset(X, Y):
        direction_vectors = [
            [[0, 1, 0], [0, 0, 0], [0, 0, 0]],
            [[0, 0, 0], [1, 0, 0], [0, 0, 0]],
            [[0, 0, 0], [0, 0, 1], [0, 0, 0]],
            [[0, 0, 0], [0, 0, 0], [0, 1, 0]],
        ]

        def shift(x, w):
            return convolve(x.reshape((8, 8)), mode="constant", weights=w).ravel()

        X = np.concatenate(
            [X] + [np.apply_along_axis(shift, 1, X, vector) for vector in direction_vectors]
        )
        Y = np.concatenate([Y for _ in range(5)], axis=0)
        return X, Y

    digits = load_digits()
    X = np.asarray(digits.data, "float32")
    X, y = nudge_dataset(X, digits.target)
    X = (X - np.min(X, 0)) / (np.max(X, 0) + 0.0001)
    return train_test_split(X, y, test_size=0.2, random_state=2017)


def test_equals_the_books_listing():
    x_train, x_test, y_train, y_test = book_6_4()
    data = DigitsNudged().load()
    assert (len(data.train), len(data.test)) == (7188, 1797)
    assert data.train.x.dtype == torch.float32 and data.spec.input_shape == (64,)
    assert np.allclose(data.train.x.numpy(), x_train, atol=1e-6)
    assert np.allclose(data.test.x.numpy(), x_test, atol=1e-6)
    assert data.train.y.tolist() == y_train.tolist() and data.test.y.tolist() == y_test.tolist()
    assert float(data.train.x.min()) == 0.0 and float(data.train.x.max()) < 1.0
