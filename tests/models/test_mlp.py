from __future__ import annotations

import pytest
import torch
from torch import nn

from dlx.core.data import Spec
from dlx.core.errors import ConfigError
from dlx.models.mlp import MLP

MNIST = Spec((1, 28, 28), 10)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_book_6_7_network_has_623290_params():
    assert count(MLP(MNIST)) == 623_290


def test_output_is_logits_per_class():
    out = MLP(Spec((1, 8, 8), 10), hidden=[32, 16])(torch.rand(5, 1, 8, 8))
    assert out.shape == (5, 10)


def test_keras_normal_init():
    torch.manual_seed(0)
    model = MLP(MNIST, init="normal")
    w = model[1].weight
    assert abs(w.std().item() - 0.05) < 0.002 and abs(w.mean().item()) < 0.002
    assert torch.count_nonzero(model[1].bias) == 0


def test_dropout_and_activation_layers():
    model = MLP(MNIST, hidden=[8, 8], activation="tanh", dropout=0.5)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Flatten", "Linear", "Tanh", "Dropout", "Linear", "Tanh", "Dropout", "Linear"]


@pytest.mark.parametrize(
    "kwargs", [{"activation": "swishy"}, {"init": "zeros"}, {"dropout": 1.0}, {"hidden": [0]}]
)
def test_bad_arguments_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        MLP(MNIST, **kwargs)
