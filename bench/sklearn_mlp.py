"""scikit-learn's MLPClassifier on the book's MLP: one hidden layer of 784 relu, adam,
batch 500, float32 input; each epoch is one `partial_fit` over the shuffled training set.
Prints one JSON line: {"epoch_time_s": [...]}.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.neural_network import MLPClassifier

from common import mnist_arrays, report


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    xs, ys = mnist_arrays(args.root)
    x = xs.reshape(len(xs), -1).astype(np.float32) / 255
    clf = MLPClassifier(
        hidden_layer_sizes=(784,), solver="adam", batch_size=500, learning_rate_init=1e-3,
        shuffle=True, random_state=2017,
    )  # fmt: skip
    classes, times = np.unique(ys), []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        clf.partial_fit(x, ys, classes=classes)
        times.append(time.perf_counter() - t0)
    report(times)


if __name__ == "__main__":
    main()
