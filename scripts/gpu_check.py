"""`make gpu-check`: the accelerated path on a CUDA GPU against fp32 eager, on the book's data.

    DLX_DATA_DIR=/data python scripts/gpu_check.py [--epochs N] [--only 6_9,6_13] [--time-limit S]
    python scripts/gpu_check.py --device cpu --dry [--no-compile]   # the same code on CPU

The book's MNIST MLP (6-9), MNIST CNN (6-13) and CIFAR-10 CNN (6-12) each train twice with the
same seed, in this one process (one CUDA context, data cached after the first load):
`fp32 eager`, then `bf16 + compile` (bf16 autocast, torch.compile with its untimed warm-up,
channels_last for the CNNs). Data sit on the GPU either way; cudnn.benchmark is on. The
table gives each run's accuracy against the book's figure for that many epochs (from the
listings' configs and results.md), the median epoch time, samples/s, compile time and the
speed-up over fp32 eager.

Checks, per listing: the bf16 run's accuracy >= book figure - `tol`, and within `agree` of
the fp32 run (one seed each: `tol` covers seed-to-seed spread, e.g. 6-12 swings by ~.03).
`--dry` trains 1 epoch on scikit-learn's digits instead (no book figure: only the agreement
is checked). Exit 0 if every check passes; 1 if one fails, a run fails or the time limit
(`--time-limit`, default 600 s for everything) runs out; 2 without CUDA (one line).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Check:
    experiment: str
    listing: str
    metric: str  # in metrics.json; the book's per-epoch val acc corresponds to it
    book: tuple[float, ...]  # published accuracy after epoch 1, 2, ...
    tol: float  # bf16 accuracy >= book[epochs - 1] - tol
    agree: float  # |bf16 - fp32| <= agree
    cnn: bool


CHECKS = (
    Check(
        "6_9_mlp_mnist",
        "6-9",
        "test/acc",
        (0.9486, 0.9630, 0.9704, 0.9747, 0.9754),
        0.01,
        0.01,
        False,
    ),
    Check(
        "6_13_cnn_mnist",
        "6-13",
        "val/acc",
        (0.9260, 0.9548, 0.9629, 0.9690, 0.9722),
        0.015,
        0.015,
        True,
    ),
    Check(
        "6_12_cnn_cifar10", "6-12", "test/acc", (0.4268, 0.4846, 0.5086, 0.5483), 0.04, 0.04, True
    ),
)
DRY_AGREE = 0.1  # digits, 1 epoch (near chance for the CNNs): only the plumbing is tested


class TimeUp(BaseException):
    """The --time-limit ran out (raised from SIGALRM, so it stops a run mid-epoch)."""


def refuse(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(2)


def modes(check: Check, compile: bool) -> list[tuple[str, list[str]]]:
    fast = ["trainer.precision=bf16-mixed", f"trainer.compile={str(compile).lower()}"]
    if check.cnn:
        fast.append("model.channels_last=true")
    name = "bf16 + compile" if compile else "bf16"
    return [("fp32 eager", ["trainer.precision=32", "trainer.compile=false"]), (name, fast)]


def train(overrides: list[str], run_dir: Path) -> dict:
    """One `dlx train` run in this process: the same compose -> run() as the CLI."""
    import torch

    from dlx.compose import compose
    from dlx.train import run

    torch._dynamo.reset()  # each compiled run compiles from scratch: comparable times
    return run(compose("train", overrides), run_dir)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--dry", action="store_true", help="digits, 1 epoch: test the script itself")
    p.add_argument("--epochs", type=int, default=None, help="default: the listing's (5, 5, 4)")
    p.add_argument("--only", default="", help="comma-separated listings, e.g. 6_9,6_13")
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--time-limit", type=int, default=600, help="seconds for everything")
    args = p.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        refuse(f"--epochs={args.epochs} must be >= 1")
    wanted = [w for w in args.only.split(",") if w]
    checks = [
        c
        for c in CHECKS
        if not wanted or any(c.experiment == w or c.experiment.startswith(w + "_") for w in wanted)
    ]
    if not checks:
        refuse(f"--only={args.only} matches none of {', '.join(c.experiment for c in CHECKS)}")

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        refuse(
            "gpu-check needs a CUDA GPU and torch.cuda.is_available() is False here "
            f"(torch {torch.__version__}); `--device cpu --dry` tests this script on CPU"
        )
    sys.path.insert(0, str(ROOT / "src"))  # a checkout without `pip install -e .`
    cudnn = torch.backends.cudnn.version()
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {cudnn}")
    if args.device == "cuda":
        cap = torch.cuda.get_device_capability()
        print(
            f"device: {torch.cuda.get_device_name()} (sm_{cap[0]}{cap[1]}, "
            f"bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}), "
            f"{torch.cuda.device_count()} visible"
        )
    else:
        print(f"device: cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)")

    common = [
        f"trainer.accelerator={args.device}",
        "trainer.progress=false",
        "trainer.checkpoint=false",
    ]
    if args.dry:
        common += ["dataset=digits", "trainer.max_epochs=1"]
    else:
        common.append("dataset.download=false")  # a GPU node may have no network
        if args.epochs:
            common.append(f"trainer.max_epochs={args.epochs}")
        print(f"data: {Path(os.environ.get('DLX_DATA_DIR', 'data')).resolve()} (DLX_DATA_DIR)")

    expired = []

    def alarm(signum: int, frame: object) -> None:
        # Raised wherever Python is; if that is a destructor, the exception is swallowed,
        # so the flag also stops the loop after the current run.
        expired.append(True)
        raise TimeUp

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(args.time_limit)
    t_start = time.perf_counter()
    rows: list[list[str]] = []
    failures: list[str] = []
    check, results = checks[0], {}  # the listing in progress and its finished runs
    try:
        with tempfile.TemporaryDirectory(prefix="dlx-gpu-check-") as tmp:
            for check in checks:
                results = {}
                for mode, extra in modes(check, args.compile):
                    overrides = [f"experiment=book/{check.experiment}", *common, *extra]
                    print(f"{check.experiment}: {mode} ...", flush=True)
                    try:
                        results[mode] = train(overrides, Path(tmp) / check.experiment / mode[:4])
                    except TimeUp:
                        raise
                    except Exception as err:  # a DlxError (missing data) or a real failure
                        failures.append(f"{check.experiment} {mode}: {err}")
                        print(f"  failed: {err}", flush=True)
                    if expired:
                        raise TimeUp
                rows += table_rows(check, results, args, failures)
                results = {}
    except TimeUp:
        rows += table_rows(check, results, args, failures)  # what finished of this listing
        failures.append(f"time limit of {args.time_limit} s reached; the table is partial")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)

    print()
    print(
        "| listing | run | metric | value | book | check | epoch s (median) | samples/s "
        "| compile s | speed-up |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


def table_rows(
    check: Check, results: dict[str, dict], args: argparse.Namespace, failures: list[str]
) -> list[list[str]]:
    rows = []
    base = results.get("fp32 eager")
    for mode, m in results.items():
        value = m.get(check.metric)
        epochs = int(m.get("epochs", 0))
        times = m.get("epoch_time_s") or [float("nan")]
        median = statistics.median(times)
        n_train = m.get("train_samples_per_s", 0) * sum(times) / max(epochs, 1)
        book = None if args.dry or epochs > len(check.book) else check.book[epochs - 1]
        verdict = []
        if value is None:
            verdict.append("no metric")
        elif mode != "fp32 eager":
            if book is not None and value < book - check.tol:
                verdict.append(f"< book - {check.tol}")
            agree = DRY_AGREE if args.dry else check.agree
            if base is not None and abs(value - base.get(check.metric, float("nan"))) > agree:
                verdict.append(f"off fp32 by > {agree}")
            if not verdict:
                verdict.append("ok")
        else:
            verdict.append("reference")
        if verdict[0] not in ("ok", "reference"):
            failures.append(f"{check.experiment} {mode}: {check.metric} {value} ({verdict[0]})")
        speed = (
            "–"
            if base is None or mode == "fp32 eager"
            else f"{statistics.median(base['epoch_time_s']) / median:.2f}x"
        )
        compile_s = m.get("compile_time_s")
        rows.append(
            [
                check.listing,
                mode,
                f"`{check.metric}`",
                "–" if value is None else f"{value:.4f}",
                "–" if book is None else f"{book:.4f} (epoch {epochs})",
                "; ".join(verdict),
                f"{median:.3f}",
                f"{n_train / median:,.0f}",
                "–" if compile_s is None else f"{compile_s:.1f}",
                speed,
            ]
        )
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
