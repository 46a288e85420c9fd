"""Data loading: each data set's first load (read the published files, build the tensors,
write dlx's cache) and a cached load, both through dlx's loaders as `dlx train` uses them.
Prints one JSON line: {name: {"first_s": ..., "cached_s": ..., "train": n, "test": n}}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--cifar-root", default=None, help="where cifar-10-batches-py is")
    args = p.parse_args()
    from dlx.data.cifar10 import CIFAR10
    from dlx.data.imdb import IMDB
    from dlx.data.mnist import MNIST

    kinds = {"mnist": (MNIST, args.root), "imdb": (IMDB, args.root)}
    if args.cifar_root:
        kinds["cifar10"] = (CIFAR10, args.cifar_root)
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        for name, (cls, root) in kinds.items():
            times = []
            for _ in range(2):  # first load fills the cache, the second reads it
                t0 = time.perf_counter()
                data = cls(root=root, download=False, cache_dir=cache).load()
                times.append(time.perf_counter() - t0)
            out[name] = {
                "first_s": times[0],
                "cached_s": times[1],
                "train": len(data.train),
                "test": len(data.test) if data.test is not None else 0,
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
