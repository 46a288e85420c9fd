"""`dataset.classes`: implemented once in the base, so every data set has it."""

from __future__ import annotations

import pytest
import torch

from dlx.core.errors import ConfigError
from dlx.data.digits import Digits
from dlx.data.mnist import MNIST


def test_keeps_the_classes_and_relabels_in_the_given_order():
    full = Digits().load()
    ds = Digits(classes=[9, 5, 7])
    assert ds.spec.num_classes == 3 and ds.spec.class_names == ("9", "5", "7")
    data = ds.load()
    for split, ref in ((data.train, full.train), (data.test, full.test)):
        keep = (ref.y == 9) | (ref.y == 5) | (ref.y == 7)
        assert torch.equal(split.x, ref.x[keep])
        mapping = {9: 0, 5: 1, 7: 2}
        assert split.y.tolist() == [mapping[int(v)] for v in ref.y[keep]]


def test_classes_apply_before_val_split_and_limit():
    data = Digits(classes=[0, 1], val_split=0.5, limit=10).load()
    assert set(data.val.y.tolist()) <= {0, 1} and len(data.train) == 10


def test_transfer_learning_split_on_mnist(mnist_root):
    data = MNIST(root=mnist_root, download=False, classes=[5, 6, 7, 8, 9]).load()
    full = MNIST(root=mnist_root, download=False).load()
    assert len(data.train) == int((full.train.y >= 5).sum())
    assert torch.equal(data.train.y, full.train.y[full.train.y >= 5] - 5)


@pytest.mark.parametrize("classes", [[10], [-1], [1, 1], []])
def test_bad_classes_are_refused(classes):
    with pytest.raises(ConfigError, match=r"dataset\.classes"):
        Digits(classes=classes).load()
