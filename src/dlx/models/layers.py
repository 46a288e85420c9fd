"""Small shared pieces: activations by name and Keras-compatible weight inits."""

from __future__ import annotations

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
