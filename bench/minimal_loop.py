"""The reference: a minimal hand-written PyTorch loop for the book's MLP or CNN on MNIST.

What a careful user writes by hand: the whole train set as one float tensor in memory, a
randperm per epoch, slice, forward, loss, backward, step. No metrics, no logging, no
checkpoints. Prints one JSON line: {"epoch_time_s": [...]}.

    python bench/minimal_loop.py --root ../shared/data --model cnn --channels-last
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from common import SETUPS, mnist_arrays, report


def build(model: str) -> tuple[nn.Module, torch.optim.Optimizer]:
    if model == "mlp":
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 784), nn.ReLU(), nn.Linear(784, 10))
        for m in net:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.05)
                nn.init.zeros_(m.bias)
        return net, torch.optim.Adam(net.parameters(), lr=1e-3)
    net = nn.Sequential(
        nn.Conv2d(1, 5, 3), nn.ReLU(), nn.Conv2d(5, 5, 3), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
        nn.Linear(720, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10),
    )  # fmt: skip
    return net, torch.optim.Adadelta(net.parameters(), lr=1.0, rho=0.95, eps=1e-7)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--model", choices=sorted(SETUPS), default="mlp")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="the glibc setting dlx's trainer makes (dlx.engine.runtime.keep_freed_memory)",
    )
    p.add_argument("--seed", type=int, default=2017)
    args = p.parse_args()

    if args.keep_freed_memory:
        from dlx.engine.runtime import keep_freed_memory

        keep_freed_memory()
    torch.manual_seed(args.seed)
    xs, ys = mnist_arrays(args.root)
    x = torch.from_numpy(xs).float().div_(255)
    y = torch.from_numpy(ys).long()
    model, opt = build(args.model)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    bs, n, times = SETUPS[args.model].batch_size, len(x), []
    model.train()
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    report(times)


if __name__ == "__main__":
    main()
