from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from dlx.core.errors import ConfigError
from dlx.data.digits import Digits, book_split, load_digits_arrays


def test_reads_the_same_digits_as_sklearn():
    images, labels = load_digits_arrays()
    ref = load_digits()
    assert np.array_equal(images, ref.images.astype(np.uint8))
    assert np.array_equal(labels, ref.target)


@pytest.mark.parametrize("test_size, seed", [(0.2, 2017), (0.25, 0), (0.33, 7)])
def test_split_matches_sklearn_train_test_split(test_size, seed):
    x = np.arange(1797)
    ref_train, ref_test = train_test_split(x, test_size=test_size, random_state=seed)
    train, test = book_split(1797, test_size, seed)
    assert np.array_equal(train, ref_train) and np.array_equal(test, ref_test)


def test_book_split_sizes_and_scale():
    data = Digits().load()
    assert (len(data.train), len(data.test)) == (1437, 360)
    assert data.val is None
    assert data.train.x.shape[1:] == (1, 8, 8) and str(data.train.x.dtype) == "torch.uint8"
    assert int(data.train.x.max()) == 16 and data.scale == 1 / 16


def test_val_split_takes_the_last_fraction_like_keras():
    full = Digits().load()
    data = Digits(val_split=0.2).load()
    cut = int(1437 * 0.8)
    assert (len(data.train), len(data.val)) == (cut, 1437 - cut)
    assert (data.val.x == full.train.x[cut:]).all()


def test_limit_caps_each_split():
    data = Digits(limit=50, val_split=0.5).load()
    assert (len(data.train), len(data.val), len(data.test)) == (50, 50, 50)


@pytest.mark.parametrize("kwargs", [{"val_split": 1.0}, {"val_split": -0.1}, {"limit": 0}])
def test_bad_options_are_refused(kwargs):
    with pytest.raises(ConfigError):
        Digits(**kwargs)
