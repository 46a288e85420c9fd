"""A single linear unit with a step output (the book's 6-1), trained by the perceptron rule.

The model returns the score w.x + b; the step (score > 0 -> class 1) is applied by the
`perceptron` task, whose loss makes SGD perform Rosenblatt's update (see tasks.py).
"""

from __future__ import annotations

import torch
from torch import nn

from dlx.core.data import Spec
from dlx.core.errors import ConfigError


class Perceptron(nn.Module):
    def __init__(self, spec: Spec, init: str = "zeros") -> None:
        if spec.num_classes != 2 or spec.vocab_size is not None:
            raise ConfigError(
                f"model=perceptron separates two classes of feature vectors; this data set "
                f"has {spec.num_classes} classes" + (" of token ids" if spec.vocab_size else "")
            )
        super().__init__()
        self.linear = nn.Linear(spec.input_size, 1)
        if init == "zeros":  # scikit-learn's Perceptron starts from zero weights too
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)
        elif init != "torch":
            raise ConfigError(f"model.init={init!r} must be zeros or torch")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.reshape(x.shape[0], -1)).squeeze(1)
