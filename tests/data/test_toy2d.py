from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification

from dlx.core.errors import ConfigError
from dlx.data.toy2d import Toy2D


def test_book_6_1_points_and_labels():
    x, y = make_classification(20, 2, n_informative=2, n_redundant=0, weights=[0.5, 0.5],
                               random_state=2017)  # fmt: skip
    data = Toy2D().load()
    assert np.allclose(data.train.x.numpy(), x) and data.test is None
    # the labels the book prints as "Actual"
    assert data.train.y.tolist() == [1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1]
    assert data.spec.input_shape == (2,) and data.spec.num_classes == 2
    assert np.array_equal(y, data.train.y.numpy())


def test_arguments_are_exposed():
    data = Toy2D(
        n_samples=50, n_features=3, n_informative=3, n_classes=3, weights=None, test_size=0.2
    ).load()
    assert (len(data.train), len(data.test)) == (40, 10)
    assert data.spec.input_shape == (3,) and data.spec.num_classes == 3


def test_inconsistent_arguments_are_one_line():
    with pytest.raises(ConfigError, match="dataset=toy2d"):
        Toy2D(n_features=2, n_informative=2, n_redundant=2).load()
