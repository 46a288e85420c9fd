"""Bernoulli RBM trained by contrastive divergence, with a classifier on its hidden units.

The book's 6-6 pipeline is scikit-learn's BernoulliRBM -> LogisticRegression. Here the RBM
is a torch module, so it trains batched on the GPU inside the one trainer: its forward
returns the classifier's logits and the free-energy gap F(v_data) - F(v_model), whose
gradient is the CD-k update (v_model from k Gibbs steps, treated as a constant). With SGD at
lr 0.1 one step is scikit-learn's update. The head (a logistic regression) learns from the
hidden probabilities, detached, so it does not pull the RBM towards the labels.
`persistent=true` keeps the Gibbs chains between batches (PCD, scikit-learn's choice).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from dlx.core.data import Spec
from dlx.core.errors import ConfigError


class BernoulliRBM(nn.Module):
    def __init__(
        self, visible: int, hidden: int, k: int = 1, persistent: bool = False, n_chains: int = 10
    ) -> None:
        if hidden < 1 or k < 1 or n_chains < 1:
            raise ConfigError(
                f"rbm: n_components={hidden}, k={k} and n_chains={n_chains} must be positive"
            )
        super().__init__()
        self.weight = nn.Parameter(torch.randn(hidden, visible) * 0.01)  # sklearn's init
        self.hidden_bias = nn.Parameter(torch.zeros(hidden))
        self.visible_bias = nn.Parameter(torch.zeros(visible))
        self.k = k
        self.persistent = persistent
        # PCD's fantasy particles (hidden states), saved in checkpoints; zeros as sklearn's.
        self.register_buffer("chains", torch.zeros(n_chains if persistent else 0, hidden))

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(F.linear(v, self.weight, self.hidden_bias))

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(F.linear(h, self.weight.t(), self.visible_bias))

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        return -v @ self.visible_bias - F.softplus(F.linear(v, self.weight, self.hidden_bias)).sum(
            1
        )

    @torch.no_grad()
    def negative_sample(self, v: torch.Tensor) -> torch.Tensor:
        h = self.chains if self.persistent else torch.bernoulli(self.hidden_probs(v))
        for _ in range(self.k):
            v_neg = torch.bernoulli(self.visible_probs(h))
            h = torch.bernoulli(self.hidden_probs(v_neg))
        if self.persistent:
            self.chains.copy_(h)
        return v_neg

    def gap(self, v: torch.Tensor) -> torch.Tensor:
        """Mean free-energy gap; its gradient is the (P)CD-k update."""
        return self.free_energy(v).mean() - self.free_energy(self.negative_sample(v)).mean()


class RBMClassifier(nn.Module):
    def __init__(
        self,
        spec: Spec,
        n_components: int = 200,
        k: int = 1,
        persistent: bool = True,
        n_chains: int = 10,
    ) -> None:
        if spec.vocab_size is not None:
            raise ConfigError("model=rbm needs features in [0, 1] (images), not token ids")
        super().__init__()
        self.rbm = BernoulliRBM(spec.input_size, n_components, k, persistent, n_chains)
        self.head = nn.Linear(n_components, spec.num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = x.reshape(x.shape[0], -1)
        features = self.rbm.hidden_probs(v)
        logits = self.head(features.detach())
        # A frozen RBM (the head-only stage) needs no Gibbs sampling.
        learning = self.training and self.rbm.weight.requires_grad
        gap = self.rbm.gap(v) if learning else logits.new_zeros(())
        return logits, gap


class DBN(nn.Module):
    """A deep belief net: stacked RBMs, pre-trained greedily one layer at a time, then the
    whole stack fine-tuned as a sigmoid MLP with a softmax head (Hinton et al. 2006).

    `train_layer=i` pre-trains RBM i on the hidden probabilities of the layers below (which
    get no gradient); `train_layer=null` fine-tunes everything by backpropagation. Run the
    phases as `stages` (see experiment=dbn_digits_nudged), each starting from the last.
    """

    def __init__(
        self,
        spec: Spec,
        layers: list[int] | tuple[int, ...] = (256, 128),
        train_layer: int | None = None,
        k: int = 1,
        persistent: bool = True,
        n_chains: int = 10,
    ) -> None:
        if spec.vocab_size is not None:
            raise ConfigError("model=dbn needs features in [0, 1] (images), not token ids")
        if not layers:
            raise ConfigError("model.layers must list at least one hidden layer width")
        if train_layer is not None and not 0 <= train_layer < len(layers):
            raise ConfigError(f"model.train_layer={train_layer} must be in 0..{len(layers) - 1}")
        super().__init__()
        sizes = [spec.input_size, *(int(n) for n in layers)]
        self.rbms = nn.ModuleList(
            BernoulliRBM(a, b, k, persistent, n_chains) for a, b in itertools.pairwise(sizes)
        )
        self.head = nn.Linear(sizes[-1], spec.num_classes)
        self.train_layer = train_layer

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.reshape(x.shape[0], -1)
        gap = h.new_zeros(())
        pretraining = self.training and self.train_layer is not None
        for i, rbm in enumerate(self.rbms):
            if pretraining and i == self.train_layer:
                gap = rbm.gap(h.detach())
            h = rbm.hidden_probs(h)
            if pretraining and i <= self.train_layer:
                h = h.detach()  # layers being or already pre-trained: no backprop through them
        logits = self.head(h.detach() if pretraining else h)
        return logits, gap
