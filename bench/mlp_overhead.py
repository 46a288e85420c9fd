"""dlx's trainer against a minimal PyTorch loop: the book's MLP (6-9) on MNIST, batch 500.

Runs alternate (dlx, minimal, dlx, minimal, ...) in fresh processes, so both see the same
machine state; each run's first epoch is a warm-up and is dropped. dlx runs through its CLI,
as users run it, and its epoch times come from its own metrics.json (training only, the
evaluation excluded). The ratio is computed pair by pair.

    DLX_DATA_DIR=../shared/data python bench/mlp_overhead.py --reps 3 --epochs 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DLX = str(Path(sys.executable).parent / "dlx")


def run_dlx(root: str, epochs: int, bs: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                DLX,
                "train",
                "experiment=book/6_9_mlp_mnist",
                f"dataset.root={root}",
                "dataset.download=false",
                f"trainer.max_epochs={epochs}",
                f"trainer.batch_size={bs}",
                "trainer.progress=false",
                "trainer.checkpoint=false",
                f"hydra.run.dir={tmp}",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(Path(tmp, "metrics.json").read_text())["epoch_time_s"]


def run_minimal(root: str, epochs: int, bs: int) -> list[float]:
    out = subprocess.run(
        [
            sys.executable,
            str(HERE / "minimal_loop.py"),
            "--root",
            root,
            "--epochs",
            str(epochs),
            "--batch-size",
            str(bs),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["epoch_time_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=os.environ.get("DLX_DATA_DIR", "data"))
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--epochs", type=int, default=4, help="per run; the first is a warm-up")
    p.add_argument("--batch-size", type=int, default=500)
    args = p.parse_args()
    if not Path(args.root, "MNIST", "raw").is_dir():
        sys.exit(f"error: no MNIST under {args.root}; set DLX_DATA_DIR or --root")

    ratios, dlx_all, ref_all = [], [], []
    for rep in range(args.reps):
        d = statistics.median(run_dlx(args.root, args.epochs, args.batch_size)[1:])
        m = statistics.median(run_minimal(args.root, args.epochs, args.batch_size)[1:])
        dlx_all.append(d)
        ref_all.append(m)
        ratios.append(d / m)
        print(f"pair {rep + 1}: dlx {d:.3f} s/epoch  minimal {m:.3f} s/epoch  ratio {d / m:.3f}")

    def fmt(xs: list[float]) -> str:
        return f"{statistics.median(xs):.3f} (min {min(xs):.3f}, max {max(xs):.3f})"

    print(
        f"\nMLP 784-784-10, MNIST 60k, batch {args.batch_size}, {args.reps} pairs, "
        f"{args.epochs - 1} timed epochs each"
    )
    print(f"  dlx train      s/epoch  {fmt(dlx_all)}")
    print(f"  minimal loop   s/epoch  {fmt(ref_all)}")
    print(f"  ratio dlx/min           {fmt(ratios)}")


if __name__ == "__main__":
    main()
