"""The reference: a minimal hand-written PyTorch loop for the book's MLP on MNIST.

What a careful user writes by hand: the whole train set as one float tensor, a randperm
per epoch, slice, forward, loss, backward, step. No metrics, no logging, no checkpoints.
Prints one JSON line: {"epoch_time_s": [...]}.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from dlx.data.mnist import MNIST


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=2017)
    args = p.parse_args()

    torch.manual_seed(args.seed)
    train, _ = MNIST(root=args.root, download=False).read()
    x = train.x.float().div_(255).reshape(len(train), -1)
    y = train.y
    model = nn.Sequential(nn.Linear(784, 784), nn.ReLU(), nn.Linear(784, 10))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.05)
            nn.init.zeros_(m.bias)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    n, bs = len(x), args.batch_size
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
    print(json.dumps({"epoch_time_s": times}))


if __name__ == "__main__":
    main()
