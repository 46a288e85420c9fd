"""The fast text baseline: the mean of a review's word embeddings, then a linear layer.

fastText-style (Joulin et al. 2016) without n-grams. Padding (id 0) is left out of the mean
by `nn.EmbeddingBag(padding_idx=0)`, so a short review is not diluted by its padding.
"""

from __future__ import annotations

import torch
from torch import nn

from dlx.core.data import Spec
from dlx.core.errors import ConfigError
from dlx.models.layers import Dropout


class EmbeddingBagClassifier(nn.Module):
    def __init__(self, spec: Spec, dim: int = 64, dropout: float = 0.0) -> None:
        if spec.vocab_size is None:
            raise ConfigError(
                f"model=embedding_bag needs token ids (a text data set such as dataset=imdb "
                f"or dataset=text); this data set gives inputs of shape "
                f"{tuple(spec.input_shape)}"
            )
        if dim < 1:
            raise ConfigError(f"model.dim={dim} must be a positive embedding width")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout={dropout} must be in [0, 1)")
        super().__init__()
        self.embedding = nn.EmbeddingBag(spec.vocab_size, dim, mode="mean", padding_idx=0)
        self.dropout = Dropout(dropout)
        self.classifier = nn.Linear(dim, spec.num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        # [batch, maxlen] int64 -> one bag per row -> [batch, dim] -> logits
        return self.classifier(self.dropout(self.embedding(ids)))
