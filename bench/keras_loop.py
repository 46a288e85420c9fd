"""Keras 3 on the same model, data, batch and optimizer; the backend comes from --backend.

Epoch times come from a callback (fit's own per-epoch work, no validation). With JAX the
first epoch includes the XLA compilation; the orchestrator drops it as a warm-up.
Prints one JSON line: {"epoch_time_s": [...], "keras": version}.
"""

from __future__ import annotations

import argparse
import os


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    p.add_argument("--backend", choices=("torch", "jax"), required=True)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    os.environ["KERAS_BACKEND"] = args.backend  # must be set before keras is imported

    import keras
    from keras import layers

    from common import SETUPS, keras_epoch_times, mnist_arrays, report

    keras.utils.set_random_seed(2017)
    xs, ys = mnist_arrays(args.root)
    x = (xs.astype("float32") / 255).transpose(0, 2, 3, 1)  # Keras 3 is channels-last
    if args.model == "mlp":
        normal = keras.initializers.RandomNormal(stddev=0.05)
        model = keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                layers.Flatten(),
                layers.Dense(784, activation="relu", kernel_initializer=normal),
                layers.Dense(10, activation="softmax", kernel_initializer=normal),
            ]
        )
        opt = keras.optimizers.Adam(1e-3, epsilon=1e-8)
    else:
        model = keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                layers.Conv2D(5, 3, activation="relu"),
                layers.Conv2D(5, 3, activation="relu"),
                layers.MaxPooling2D(2),
                layers.Dropout(0.25),
                layers.Flatten(),
                layers.Dense(128, activation="relu"),
                layers.Dropout(0.5),
                layers.Dense(10, activation="softmax"),
            ]
        )
        opt = keras.optimizers.Adadelta(1.0, rho=0.95, epsilon=1e-7)
    model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])

    cb = keras_epoch_times(keras)
    bs = SETUPS[args.model].batch_size
    model.fit(x, ys, batch_size=bs, epochs=args.epochs, verbose=0, callbacks=[cb])
    report(cb.times, keras=keras.__version__)


if __name__ == "__main__":
    main()
