"""The chapter's slow listings (6-12 CNN on CIFAR-10, 6-14 LSTM on IMDB, 6-15's first stage)
as a minimal hand-written PyTorch loop or in Keras 3 (torch or JAX backend), on the same
arrays dlx reads, the same batch and optimizer. Prints one JSON line: {"epoch_time_s": [...]}.

    python bench/chapter_loops.py --root ../shared/data --model lstm --impl torch
    python bench/chapter_loops.py --root ../shared/data --model lstm --impl keras --backend jax

The torch LSTM is what a careful user writes for Keras 1's recurrent dropout (one mask per
sequence on the hidden state, which the fused nn.LSTM cannot apply): an nn.LSTMCell loop.
Keras 3 has no word-level embedding dropout (Keras 1's `Embedding(dropout=)`); its LSTM
gets `dropout` and `recurrent_dropout`, the costly part.
"""

from __future__ import annotations

import argparse
import os
import time

from chapter_data import LOADERS

from common import SETUPS, keras_epoch_times, report


def torch_model(model: str):
    import torch
    from torch import nn

    if model == "cnn_cifar":
        net = nn.Sequential(
            nn.Conv2d(3, 10, 3), nn.ReLU(), nn.Conv2d(10, 10, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(1960, 512), nn.ReLU(), nn.Linear(512, 10),
        )  # fmt: skip
        return net, torch.optim.Adadelta(net.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    if model == "transfer":
        net = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Dropout(0.25), nn.Flatten(), nn.Linear(4608, 128), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(128, 5),
        )  # fmt: skip
        return net, torch.optim.Adadelta(net.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    net = LSTMCellLoop()
    return net, torch.optim.Adam(net.parameters(), lr=1e-3)


def LSTMCellLoop():
    import torch
    from torch import nn

    def mask(shape: tuple[int, ...], p: float, like: torch.Tensor) -> torch.Tensor:
        return torch.empty(shape, device=like.device).bernoulli_(1 - p) / (1 - p)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(20000, 128)
            self.cell = nn.LSTMCell(128, 128)
            self.head = nn.Linear(128, 1)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            x = self.embedding(ids)
            words = mask((self.embedding.num_embeddings,), 0.2, x)  # Keras 1: whole words
            x = x * words[ids].unsqueeze(-1) * mask((x.shape[0], 1, x.shape[2]), 0.2, x)
            h = x.new_zeros(x.shape[0], 128)
            c = x.new_zeros(x.shape[0], 128)
            drop_h = mask((x.shape[0], 128), 0.2, x)
            for t in range(x.shape[1]):
                h, c = self.cell(x[:, t], (h * drop_h, c))
            return self.head(h).squeeze(1)

    return Net()


def run_torch(model: str, x, y, epochs: int) -> list[float]:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(2017)
    net, opt = torch_model(model)
    if model == "lstm":
        xs, ys = torch.from_numpy(x).long(), torch.from_numpy(y).float()
        loss_fn = F.binary_cross_entropy_with_logits
    else:
        xs, ys = torch.from_numpy(x).float().div_(255), torch.from_numpy(y).long()
        loss_fn = F.cross_entropy
    bs, n, times = SETUPS[model].batch_size, len(xs), []
    net.train()
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            loss = loss_fn(net(xs[idx]), ys[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return times


def run_keras(model: str, x, y, epochs: int, backend: str) -> tuple[list[float], str]:
    os.environ["KERAS_BACKEND"] = backend  # before keras is imported
    import keras
    from keras import layers

    keras.utils.set_random_seed(2017)
    if model == "lstm":
        net = keras.Sequential([
            keras.Input((80,), dtype="int32"),
            layers.Embedding(20000, 128),
            layers.LSTM(128, dropout=0.2, recurrent_dropout=0.2),
            layers.Dense(1, activation="sigmoid"),
        ])  # fmt: skip
        net.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    else:
        x = (x.astype("float32") / 255).transpose(0, 2, 3, 1)  # Keras 3 is channels-last
        f = 10 if model == "cnn_cifar" else 32
        conv = [layers.Conv2D(f, 3, activation="relu"), layers.Conv2D(f, 3, activation="relu"),
                layers.MaxPooling2D(2)]  # fmt: skip
        if model == "cnn_cifar":
            head = [layers.Flatten(), layers.Dense(512, activation="relu"),
                    layers.Dense(10, activation="softmax")]  # fmt: skip
        else:
            head = [layers.Dropout(0.25), layers.Flatten(), layers.Dense(128, activation="relu"),
                    layers.Dropout(0.5), layers.Dense(5, activation="softmax")]  # fmt: skip
        stack = [*conv, *head]
        net = keras.Sequential([keras.Input(x.shape[1:]), *stack])
        opt = keras.optimizers.Adadelta(1.0, rho=0.95, epsilon=1e-7)
        net.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])

    cb = keras_epoch_times(keras)
    bs = SETUPS[model].batch_size
    net.fit(x, y, batch_size=bs, epochs=epochs, verbose=0, callbacks=[cb])
    return cb.times, keras.__version__


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--model", choices=sorted(LOADERS), required=True)
    p.add_argument("--impl", choices=("torch", "keras"), required=True)
    p.add_argument("--backend", choices=("torch", "jax"), default="torch")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--samples", type=int, default=0, help="train on the first N (0: all)")
    args = p.parse_args()
    x, y = LOADERS[args.model](args.root)
    if args.samples:
        x, y = x[: args.samples], y[: args.samples]
    if args.impl == "torch":
        report(run_torch(args.model, x, y, args.epochs))
    else:
        times, version = run_keras(args.model, x, y, args.epochs, args.backend)
        report(times, keras=version)


if __name__ == "__main__":
    main()
