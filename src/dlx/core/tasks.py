"""Tasks decide what a model is trained for: the target, the loss and the metrics.

The trainer stays the same for every model; a task turns a batch (x, y) into the model's
input and target, scores the output, and returns per-batch metric *sums* as one tensor so
the trainer can accumulate them on the device and read them once per epoch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Task:
    name = "task"
    metric_names: tuple[str, ...] = ()
    # What `best`/early stopping watch by default, and whether higher is better.
    monitor = "loss"
    monitor_mode = "min"

    def prepare(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Model input and target for a batch; x is already float and scaled."""
        return x, y

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metric_sums(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Sums over the batch of each metric in `metric_names` (float tensor, shape [k])."""
        return output.new_zeros(0)

    def predict(self, output: torch.Tensor) -> torch.Tensor | None:
        """The class ids the metrics score (None for a task without classes)."""
        return None


class Classification(Task):
    """Multi-class classification: cross-entropy on logits (softmax + categorical CE)."""

    name = "classify"
    metric_names = ("acc",)
    monitor = "acc"
    monitor_mode = "max"

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.float(), target)

    def metric_sums(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (output.argmax(dim=1) == target).sum(dtype=torch.float32).reshape(1)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        return output.argmax(dim=1)


class Binary(Task):
    """Two classes with one logit: sigmoid + binary cross-entropy (Keras' Dense(1, sigmoid))."""

    name = "binary"
    metric_names = ("acc",)
    monitor = "acc"
    monitor_mode = "max"

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(output.float().reshape(-1), target.float())

    def metric_sums(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (self.predict(output) == target).sum(dtype=torch.float32).reshape(1)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        return (output.reshape(-1) > 0).long()


class Reconstruction(Task):
    """Autoencoders: the target is the (flattened) input itself; mean squared error."""

    name = "reconstruct"

    def prepare(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x.reshape(x.shape[0], -1)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(output.float(), target)


class Denoising(Reconstruction):
    """The book's 6-11: Gaussian noise x noise_factor, clipped to [0, 1]; noisy in, clean out.

    The noise comes from torch's global RNG, which checkpoints save, so resumes are exact.
    """

    name = "denoise"

    def __init__(self, noise_factor: float = 0.5) -> None:
        self.noise_factor = noise_factor

    def prepare(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noisy = (x + self.noise_factor * torch.randn_like(x)).clamp_(0.0, 1.0)
        return noisy, x.reshape(x.shape[0], -1)


class PerceptronRule(Binary):
    """Rosenblatt's rule as a loss: for each misclassified sample (s * f(x) <= 0, with
    s = +1/-1), loss -s * f(x), whose SGD step is w += lr * s * x; correct ones add nothing.
    With batch_size 1 and SGD this is the classic online perceptron (scikit-learn's too)."""

    name = "perceptron"  # accuracy as Binary's: the step output is score > 0

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        s = target.float() * 2 - 1
        margin = s * output.float().reshape(-1)
        wrong = (margin <= 0).float()  # a constant mask: the gradient is -s*x where wrong
        return (-margin * wrong).mean()


class RBMTask(Classification):
    """Bernoulli RBM + classifier head: the model returns (logits, free-energy gap).

    The gap's gradient is the contrastive-divergence update of the RBM; the head learns
    from the RBM's hidden probabilities (detached), like the book's RBM -> logistic
    regression pipeline, but in one pass. val/test loss and acc are the head's."""

    name = "rbm"

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits, gap = output
        return F.cross_entropy(logits.float(), target) + gap

    def metric_sums(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return super().metric_sums(output[0], target)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        return super().predict(output[0])
