"""Convolutional nets in the book's shape: conv blocks, max-pool, dropout, a dense head.

Defaults are the 6-13 MNIST net (Conv(5,3x3) relu x2 -> MaxPool 2 -> Dropout .25 ->
Dense(128) relu -> Dropout .5 -> classes: 93,858 parameters); 6-12's CIFAR-10 net is
filters [10, 10], no dropout, Dense(512): 1,010,352 parameters. Keras' 'valid' padding and
glorot-uniform init. Channel-first tensors like the book, stored channels-last by default
(`channels_last`, Keras' layout too): the same math, 10-17% faster a training step for the
book's three CNNs on this 2-core CPU (oneDNN's NHWC convolutions); false keeps NCHW. The
parts are named `features` and `classifier`, so transfer learning freezes
`model.freeze=[features]` (whose frozen convolutions then run once a fit: engine/frozen.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dlx.core.data import Spec
from dlx.core.errors import ConfigError
from dlx.models.layers import Dropout, Flatten, init_weights
from dlx.models.layers import activation as make_activation


class CNN(nn.Module):
    def __init__(
        self,
        spec: Spec,
        filters: Sequence[int] = (5, 5),
        kernel_size: int = 3,
        activation: str = "relu",
        pool: int = 2,
        padding: str = "valid",
        conv_dropout: float = 0.25,
        hidden: Sequence[int] = (128,),
        dropout: float = 0.5,
        init: str = "glorot_uniform",
        channels_last: bool = True,
    ) -> None:
        if spec.vocab_size is not None or len(spec.input_shape) != 3:
            raise ConfigError(
                f"model=cnn needs images (channels, height, width); this data set gives "
                f"{'token ids' if spec.vocab_size else 'inputs'} of shape {tuple(spec.input_shape)}"
            )
        if padding not in ("valid", "same"):
            raise ConfigError(f"model.padding={padding!r} must be valid or same")
        super().__init__()
        layers: list[nn.Module] = []
        channels = spec.input_shape[0]
        for f in filters:
            layers += [
                nn.Conv2d(channels, int(f), kernel_size, padding=padding),
                make_activation(activation),
            ]
            channels = int(f)
        if pool > 1:
            layers.append(nn.MaxPool2d(pool))
        if conv_dropout:
            layers.append(Dropout(conv_dropout))
        layers.append(Flatten())
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            try:
                width = self.features(torch.zeros(1, *spec.input_shape)).shape[1]
            except RuntimeError:
                raise ConfigError(
                    f"model=cnn: images of {tuple(spec.input_shape)} are too small for "
                    f"{len(filters)} convolutions of {kernel_size}x{kernel_size} and pooling "
                    f"{pool}; use model.padding=same or fewer filters"
                ) from None
        head: list[nn.Module] = []
        for h in hidden:
            head += [nn.Linear(width, int(h)), make_activation(activation)]
            if dropout:
                head.append(Dropout(dropout))
            width = int(h)
        head.append(nn.Linear(width, spec.num_classes))
        self.classifier = nn.Sequential(*head)
        init_weights(self, init)
        self.channels_last = channels_last
        self.skip = 0  # feature layers its input already went through (engine/frozen.py)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.skip:  # frozen layers' output, computed once for the whole fit
            return self.classifier(self.features[self.skip :](x))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.classifier(self.features(x))
