"""dlx's Flatten: nn.Flatten's values and gradients, the gradient of a channels-last feature
map back in channels-last, and a CNN trained with it the same to the bit as with nn.Flatten."""

from __future__ import annotations

import torch
from torch import nn

from dlx.core.data import Spec
from dlx.models.cnn import CNN
from dlx.models.layers import Flatten


def grad_through(flatten: nn.Module, x: torch.Tensor, w: torch.Tensor) -> tuple:
    """The output, and the gradient as the layer below receives it (a non-leaf: autograd
    restrides only a leaf's .grad to its layout)."""
    leaf = x.clone().requires_grad_()
    below = leaf * 1.0  # channels-last like x, and not a leaf
    seen: list[torch.Tensor] = []
    below.register_hook(seen.append)
    out = flatten(below)
    (out * w).sum().backward()
    return out, seen[0]


def test_values_and_gradient_are_nn_flattens_in_the_inputs_layout():
    x = torch.randn(4, 3, 5, 6).contiguous(memory_format=torch.channels_last)
    w = torch.randn(4, 90)
    out, grad = grad_through(Flatten(), x, w)
    ref, ref_grad = grad_through(nn.Flatten(), x, w)
    assert torch.equal(out, ref) and out.is_contiguous()
    assert torch.equal(grad, ref_grad)
    assert grad.is_contiguous(memory_format=torch.channels_last) and not grad.is_contiguous()
    assert ref_grad.is_contiguous()  # nn.Flatten's: NCHW, so the layers below mix layouts


def test_other_inputs_take_nn_flattens_path():
    w = torch.randn(4, 90)
    nchw = torch.randn(4, 3, 5, 6)
    out, grad = grad_through(Flatten(), nchw, w)
    assert torch.equal(out, nchw.flatten(1)) and grad.is_contiguous()
    # other dims on a channels-last map: nn.Flatten's own, not the (N, -1) path
    x = torch.randn(4, 3, 5, 6).contiguous(memory_format=torch.channels_last)
    assert Flatten(2)(x.requires_grad_()).shape == (4, 3, 30)


def test_a_cnn_trains_to_the_same_bits_as_with_nn_flatten():
    spec = Spec((1, 12, 12), 3)
    params = []
    for swap in (False, True):
        torch.manual_seed(0)
        net = CNN(spec, filters=[4, 4], conv_dropout=0.25, hidden=[8], dropout=0.5)
        assert type(net.features[-1]) is Flatten
        if swap:
            net.features[-1] = nn.Flatten()
        opt = torch.optim.Adadelta(net.parameters(), lr=1.0)
        gen = torch.Generator().manual_seed(1)
        for _ in range(5):
            x = torch.randn(16, 1, 12, 12, generator=gen)
            y = torch.randint(0, 3, (16,), generator=gen)
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        params.append([p.detach() for p in net.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*params, strict=True))
