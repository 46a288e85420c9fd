"""What every bench script shares: the two book models' settings and the MNIST arrays.

The MLP is listing 6-9 (784 -> Dense(784, relu) -> 10, adam, batch 500); the CNN is 6-13
(Conv(5, 3x3) relu x2 -> MaxPool 2 -> Dropout .25 -> Dense(128) relu -> Dropout .5 -> 10,
adadelta lr 1 rho .95 eps 1e-7, batch 256). Every contender trains on the full 60,000
MNIST training images, no validation, so an epoch is the same work everywhere.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Setup:
    experiment: str  # dlx's config for the same model
    batch_size: int
    # analytic FLOPs of one training epoch (forward + backward), for GFLOP/s
    epoch_gflop: float


# MLP per sample: forward 2*(784*784 + 784*10), weight gradients the same again, the input
# gradient of the second layer 2*784*10 (the first layer's is not needed).
_MLP_FLOP = 2 * (784 * 784 + 784 * 10) * 2 + 2 * 784 * 10
# LSTM per review (80 steps, embedding and hidden 128, 4 gates): six products of 2*80*128*512
# FLOP (input and recurrent projections; their input and weight gradients), the head aside.
_LSTM_FLOP = 6 * 2 * 80 * 128 * 512
SETUPS = {
    "mlp": Setup("book/6_9_mlp_mnist", 500, 60_000 * _MLP_FLOP / 1e9),
    "cnn": Setup("book/6_13_cnn_mnist", 256, float("nan")),
    # the chapter's slow listings (bench/chapter.py): CIFAR-10's 50,000 images, IMDB's
    # 25,000 reviews (80 ids, Keras 1's dropouts), and 6-15's first stage (digits 0-4)
    "cnn_cifar": Setup("book/6_12_cnn_cifar10", 256, float("nan")),
    "lstm": Setup("book/6_14_lstm_imdb", 32, 25_000 * _LSTM_FLOP / 1e9),
    "transfer": Setup("book/6_15_transfer_mnist", 128, float("nan")),
}


def mnist_arrays(root: str) -> tuple[np.ndarray, np.ndarray]:
    """The 60,000 training images as uint8 (N, 1, 28, 28) and labels (N,), read by dlx."""
    from dlx.data.mnist import MNIST

    train, _ = MNIST(root=root, download=False).read()
    return train.x.numpy(), train.y.numpy()


def keras_epoch_times(keras: Any) -> Any:
    """A Keras callback whose `.times` collects each epoch's wall time (keras passed in: it
    is imported only after the caller has chosen its backend)."""

    class Times(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            self.times.append(time.perf_counter() - self.t0)

    return Times()


def report(epoch_times: list[float], **extra: object) -> None:
    """The one line the orchestrator reads: JSON on the last line of stdout."""
    sys.stdout.write(json.dumps({"epoch_time_s": epoch_times, **extra}) + "\n")
