"""Multi-layer perceptron: flatten, hidden Dense layers, a linear output (logits)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from dlx.core.data import Spec
from dlx.core.errors import ConfigError
from dlx.models.layers import Dropout, init_weights
from dlx.models.layers import activation as make_activation


class MLP(nn.Sequential):
    """The book's 6-7 network by default: 784 -> Dense(784, relu, init normal) -> 10.

    Softmax lives in the loss (cross-entropy on logits), as is usual in torch.
    """

    def __init__(
        self,
        spec: Spec,
        hidden: Sequence[int] = (784,),
        activation: str = "relu",
        dropout: float = 0.0,
        init: str = "normal",
    ) -> None:
        if spec.vocab_size is not None:
            raise ConfigError(
                "model=mlp takes numeric features, but this data set gives token ids; "
                "use a text model such as model=embedding_bag"
            )
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout={dropout} must be in [0, 1)")
        if any(int(h) < 1 for h in hidden):
            raise ConfigError(f"model.hidden={list(hidden)} must be positive layer widths")
        layers: list[nn.Module] = [nn.Flatten()]
        width = spec.input_size
        for h in hidden:
            layers += [nn.Linear(width, int(h)), make_activation(activation)]
            if dropout:
                layers.append(Dropout(dropout))
            width = int(h)
        layers.append(nn.Linear(width, spec.num_classes))
        super().__init__(*layers)
        init_weights(self, init)
