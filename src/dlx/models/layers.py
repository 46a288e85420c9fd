"""Small shared pieces: activations by name, Keras-compatible weight inits, a dropout whose
CPU mask is cheap to draw, and a flatten whose gradient keeps the channels-last layout."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dlx.core.errors import ConfigError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "leaky_relu": nn.LeakyReLU,
    "softplus": nn.Softplus,
    "linear": nn.Identity,
}


def activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ConfigError(
            f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}"
        ) from None


INITS = ("torch", "normal", "glorot_uniform", "he_normal")


def init_weights(module: nn.Module, scheme: str) -> None:
    """Initialise Linear/Conv weights (biases to zero) like Keras' `init=` names.

    `normal` is Keras 1's `init='normal'`: N(0, 0.05). `torch` keeps PyTorch's defaults.
    """
    if scheme not in INITS:
        raise ConfigError(f"unknown init {scheme!r}; choose one of {', '.join(INITS)}")
    if scheme == "torch":
        return
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            if scheme == "normal":
                nn.init.normal_(m.weight, 0.0, 0.05)
            elif scheme == "glorot_uniform":
                nn.init.xavier_uniform_(m.weight)
            elif scheme == "he_normal":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Dropout(nn.Dropout):
    """nn.Dropout (a subclass: same repr, same checks) with its CPU mask drawn from 4
    elements' worth of random bits per number torch's generator makes.

    Why: torch's CPU dropout draws one Bernoulli per element, serially; on this 2-core machine
    the mask of 6-15's feature maps ([128, 32, 12, 12]) took 5-9 ms a batch, against 1.3 ms
    here, out of a ~25 ms step. The mask comes from torch's global generator (which seeds and
    checkpoints save), so runs still repeat and resume exactly; p is rounded to a multiple of
    1/32768 and the kept values scaled by the rounded keep rate, so the layer stays unbiased.
    Elsewhere (CUDA's fused dropout is fast) and in evaluation it is nn.Dropout.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return F.dropout(x, self.p, self.training, self.inplace)
        return x * keep_mask(x.shape, self.p, x.dtype)


def keep_mask(
    shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """A float mask of `shape`: 0 with probability p (in steps of 1/32768), else 1/(1-p)."""
    n = math.prod(shape)
    drop = min(round(p * 32768), 32768)
    if drop == 32768:
        return torch.zeros(shape, dtype=dtype)
    # random_() fills an int64 with 63 random bits: as four int16, the low 15 bits of each
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_().view(torch.int16)[:n]
    keep = (bits & 0x7FFF) >= drop
    return keep.view(shape).to(dtype).mul_(32768 / (32768 - drop))


class Flatten(nn.Flatten):
    """nn.Flatten (a subclass: same repr, same values) whose gradient comes back in the
    input's layout when that is channels-last.

    Why: flattening a channels-last feature map copies it into NCHW order (the order the
    dense weights expect), and that copy's backward hands the layer below an NCHW gradient;
    dropout and pooling below then mix layouts (max-pooling's backward copied its whole
    input). Training steps, A/B in one process: 6-15's 39.8 against 41.6 ms, 6-12's 34.7
    against 35.7 ms; the same parameters to the bit after training (test).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.dim() == 4
            and self.start_dim == 1
            and self.end_dim == -1
            and x.requires_grad
            and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)
        ):
            return _FlattenChannelsLast.apply(x)
        return super().forward(x)


class _FlattenChannelsLast(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        ctx.shape = x.shape  # type: ignore[attr-defined]
        return x.flatten(1)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        shape = ctx.shape  # type: ignore[attr-defined]
        return grad.reshape(shape).contiguous(memory_format=torch.channels_last)
