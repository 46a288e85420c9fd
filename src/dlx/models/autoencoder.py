"""The book's 6-10 autoencoder: 784 -> Dense(144, relu) -> Dense(784, linear).

226,720 parameters on MNIST. Trained with `task=reconstruct` (mse on the input), or
`task=denoise` for the 6-11 denoising autoencoder (`model=denoising_autoencoder`).
"""

from __future__ import annotations

import torch
from torch import nn

from dlx.core.data import Spec
from dlx.core.errors import ConfigError
from dlx.models.layers import activation as make_activation
from dlx.models.layers import init_weights


class Autoencoder(nn.Module):
    def __init__(
        self, spec: Spec, code: int = 144, activation: str = "relu", init: str = "glorot_uniform"
    ) -> None:
        if spec.vocab_size is not None:
            raise ConfigError("model=autoencoder reconstructs images or features, not token ids")
        if code < 1:
            raise ConfigError(f"model.code={code} must be a positive width")
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(spec.input_size, code), make_activation(activation)
        )
        self.decoder = nn.Linear(code, spec.input_size)
        init_weights(self, init)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
