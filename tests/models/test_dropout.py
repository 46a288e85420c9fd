"""dlx's Dropout: nn.Dropout's contract (rate, scale, gradient, evaluation), its mask from
torch's seeded generator, and the same module everywhere the book's models drop units."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlx.core.data import Spec
from dlx.models.cnn import CNN
from dlx.models.layers import Dropout, keep_mask
from dlx.models.mlp import MLP


@pytest.mark.parametrize("p", [0.2, 0.25, 0.5, 0.9])
def test_keep_rate_and_scale_make_it_unbiased(p):
    torch.manual_seed(0)
    mask = keep_mask((2000, 1000), p)
    kept = (mask > 0).float()
    assert kept.mean().item() == pytest.approx(1 - p, abs=0.002)  # 2e6 draws: sd ~3.5e-4
    assert mask.mean().item() == pytest.approx(1.0, abs=0.004)
    values = mask.unique().tolist()
    assert len(values) == 2 and values[0] == 0 and values[1] == pytest.approx(1 / (1 - p), rel=1e-4)


def test_mask_elements_are_independent():
    """Four elements come from one random number: neighbours must not be correlated."""
    torch.manual_seed(1)
    kept = (keep_mask((4_000_000,), 0.5) > 0).float()
    for lag in (1, 2, 3, 4, 5):
        corr = torch.corrcoef(torch.stack([kept[:-lag], kept[lag:]]))[0, 1].item()
        assert abs(corr) < 0.003, lag  # 4e6 pairs: sd ~5e-4
    assert kept.view(-1, 4).mean(0).sub(0.5).abs().max().item() < 0.002  # each int16 lane


def test_forward_backward_and_evaluation_are_nn_dropouts():
    layer = Dropout(0.25)
    assert isinstance(layer, nn.Dropout) and repr(layer) == repr(nn.Dropout(0.25))
    x = torch.rand(64, 32, 6, 6, requires_grad=True).double()
    x.retain_grad()
    out = layer.train()(x)
    out.sum().backward()
    kept = out != 0
    assert out.dtype == torch.float64 and 0.70 < kept.double().mean().item() < 0.80
    torch.testing.assert_close(out[kept], x[kept] / 0.75)
    torch.testing.assert_close(x.grad, kept.double() / 0.75)  # the gradient is the mask
    assert torch.equal(layer.eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    assert not Dropout(1.0).train()(x).any()


def test_the_mask_follows_torchs_seed():
    x = torch.ones(8, 100)
    torch.manual_seed(7)
    a = Dropout(0.5).train()(x)
    torch.manual_seed(7)
    b = Dropout(0.5).train()(x)
    c = Dropout(0.5).train()(x)
    assert torch.equal(a, b) and not torch.equal(b, c)


def test_bf16_stays_bf16():
    x = torch.rand(4, 16, dtype=torch.bfloat16)
    assert Dropout(0.5).train()(x).dtype == torch.bfloat16


def test_the_book_models_use_it():
    mlp = MLP(Spec((1, 28, 28), 10), dropout=0.2)  # one hidden layer
    cnn = CNN(Spec((1, 28, 28), 10))  # after the convolutions and the dense layer
    drops = [m for net in (mlp, cnn) for m in net.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 3 and all(type(m) is Dropout for m in drops)
