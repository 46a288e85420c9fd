"""Run every book experiment on real data and write docs/REPRODUCTION.md.

    DLX_DATA_DIR=../shared/data python scripts/reproduce.py --seeds 3 [--only 6_9,6_13] [KEY=VAL]
    make reproduce SEEDS=1 ARGS="trainer.accelerator=cuda"    # KEY=VAL: overrides for every run

Each listing runs as one Hydra multirun over `seed` (2017, 2018, ...); the table gives the
published figure, dlx's mean ± sd over the seeds (and each seed's value), today's Keras 3 /
scikit-learn figure from ../shared/book/results.md, parameters, epochs, wall time and device.
CIFAR-10 is built once from the shared JPEG copy when no `cifar-10-batches-py` is found.
The listings that keep one core busy (scikit-learn's, the Q-learning, the perceptron twin:
their start-up is most of their time) run --jobs at a time first; the others one after
another, each with the machine to itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DLX = str(Path(sys.executable).parent / "dlx")
NOTES = "## Notes"  # REPRODUCTION.md keeps everything from this heading on


@dataclass
class Listing:
    experiment: str
    listing: str
    what: str
    metric: str  # key in metrics.json
    published: str
    target: float | list | None  # what dlx must reach (>= for acc, <= for loss, == for a path)
    today: str  # Keras 3 / scikit-learn today, from results.md
    slow: bool = False
    light: bool = False  # one core is all it uses: it may share the machine (--jobs)


LISTINGS = [
    Listing(
        "6_1_perceptron",
        "6-1",
        "Perceptron (scikit-learn)",
        "train/acc",
        "acc 100%",
        1.0,
        "acc 100%",
        light=True,
    ),
    Listing(
        "6_1_perceptron_torch",
        "6-1",
        "Perceptron rule (torch twin)",
        "train/acc",
        "acc 100%",
        1.0,
        "acc 100%",
        light=True,
    ),
    Listing(
        "6_3_mlp_sklearn",
        "6-3",
        "MLP (scikit-learn), digits",
        "test/acc",
        "test .9833",
        0.9833,
        ".9910/.9833 (np seed 2017); fixed seeds .9861",
        light=True,
    ),
    Listing(
        "6_5_logistic",
        "6-5",
        "Logistic regression, nudged digits",
        "test/acc",
        "test .8008",
        0.80,
        "liblinear .7991; lbfgs .8086",
        light=True,
    ),
    Listing(
        "6_6_rbm_logistic",
        "6-6",
        "RBM + logistic (scikit-learn)",
        "test/acc",
        "test .9321",
        0.9321,
        ".9254 (liblinear); .9355 (lbfgs)",
        light=True,
    ),
    Listing(
        "6_6_rbm_torch",
        "6-6",
        "RBM + logistic head (torch twin)",
        "test/acc",
        "test .9321",
        0.9321,
        "–",
    ),
    Listing(
        "6_9_mlp_mnist",
        "6-9",
        "MLP, MNIST",
        "test/acc",
        "test .9754 (err 2.46%)",
        0.9754,
        ".9755 (.9729–.9767)",
    ),
    Listing(
        "6_10_autoencoder",
        "6-10",
        "Autoencoder, MNIST",
        "train/loss",
        "loss .0354",
        0.0354,
        ".0362 (eps 1e-7) / .0359 (eps 1e-8)",
    ),
    Listing(
        "6_11_denoising_autoencoder",
        "6-11",
        "Denoising autoencoder, MNIST",
        "train/loss",
        "plots only",
        None,
        "–",
    ),
    Listing(
        "6_12_cnn_cifar10",
        "6-12",
        "CNN, CIFAR-10 (JPEG copy)",
        "test/acc",
        "val .5483",
        0.5483,
        ".5552 (.5351–.5790), eps 1e-7",
    ),
    Listing(
        "6_13_cnn_mnist",
        "6-13",
        "CNN, MNIST (val split .2)",
        "val/acc",
        "val .9722",
        0.9722,
        ".9766 (.9727–.9790), eps 1e-7",
    ),
    Listing(
        "6_14_lstm_imdb",
        "6-14",
        "LSTM, IMDB",
        "test/acc",
        "test .8342",
        0.834,
        ".8213 final (.8110–.8274); Keras 1 word dropout .8284",
        slow=True,
    ),
    Listing(
        "6_15_transfer_mnist",
        "6-15",
        "Transfer: digits 0–4",
        "digits_0_4/test/acc",
        "test .9928",
        0.9928,
        ".9975 (eps 1e-7)",
    ),
    Listing(
        "6_15_transfer_mnist",
        "6-15",
        "Transfer: 5–9, frozen features",
        "digits_5_9/test/acc",
        "test .9866",
        0.9866,
        ".9919 (eps 1e-7)",
    ),
    Listing(
        "6_16_qlearning_maze",
        "6-16",
        "Q-learning, 6-state maze",
        "greedy_path",
        "[2, 3, 1, 5]",
        [2, 3, 1, 5],
        "–",
        light=True,
    ),
]


def cifar_root(data_dir: Path, cache_dir: Path) -> Path | None:
    if (data_dir / "cifar-10-batches-py").is_dir():
        return data_dir
    build = data_dir / "cifar10" / "build.py"
    if not build.is_file():
        return None
    dest = cache_dir / "cifar10-built"
    if not (dest / "cifar-10-batches-py" / "test_batch").is_file():
        print(f"building CIFAR-10 from the JPEG copy into {dest} ...", flush=True)
        subprocess.run([sys.executable, str(build), str(dest)], check=True)
    return dest


# Wall time of each listing's whole multirun (all its seeds, start-up included), by experiment.
ELAPSED: dict[str, float] = {}


def run(experiment: str, seeds: list[int], out: Path, extra: list[str], reuse: bool) -> list[dict]:
    sweep = out / experiment
    if reuse and all((sweep / str(i) / "metrics.json").is_file() for i in range(len(seeds))):
        print(f"reusing {sweep}", flush=True)
        return [
            json.loads((sweep / str(i) / "metrics.json").read_text()) for i in range(len(seeds))
        ]
    cmd = [
        DLX,
        "train",
        "-m",
        f"experiment=book/{experiment}",
        f"seed={','.join(map(str, seeds))}",
        "trainer.progress=false",
        f"hydra.sweep.dir={sweep}",
        *extra,
    ]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
    ELAPSED[experiment] = time.perf_counter() - t0
    print(f"  {ELAPSED[experiment]:.0f} s", flush=True)
    results = []
    for job in sorted(sweep.glob("*/metrics.json"), key=lambda p: int(p.parent.name)):
        results.append(json.loads(job.read_text()))
    return results


def fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def verdict(item: Listing, values: list) -> str:
    if item.target is None or not values:
        return "–"
    if isinstance(item.target, list):
        return "yes" if all(v == item.target for v in values) else "no"
    mean = statistics.mean(values)
    ok = mean <= item.target if "loss" in item.metric else mean >= item.target
    return "yes" if ok else "no"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--lstm-seeds", type=int, default=None, help="seeds for the slow LSTM")
    p.add_argument("--only", default="", help="comma-separated experiment names (prefixes)")
    p.add_argument("--out", default=str(ROOT / "outputs" / "reproduce"))
    p.add_argument("--doc", default=str(ROOT / "docs" / "REPRODUCTION.md"))
    p.add_argument("--reuse", action="store_true", help="keep finished sweeps in --out")
    p.add_argument("--jobs", type=int, default=2, help="one-core listings run this many at once")
    p.add_argument(
        "overrides", nargs="*", help="Hydra overrides for every run, e.g. trainer.accelerator=cuda"
    )
    args = p.parse_intermixed_args()
    t_start = time.perf_counter()

    data_dir = Path(os.environ.get("DLX_DATA_DIR", "data")).resolve()
    cache_dir = Path(os.environ.get("DLX_CACHE_DIR", "~/.cache/dlx")).expanduser()
    out = Path(args.out)
    cifar = cifar_root(data_dir, cache_dir)
    wanted = [w for w in args.only.split(",") if w]
    selected = [
        item
        for item in LISTINGS
        if not wanted
        or any(item.experiment == w or item.experiment.startswith(w + "_") for w in wanted)
    ]
    taken = sorted(i.experiment for i in selected if (out / i.experiment).exists())
    if taken and not args.reuse:  # each would fail, and the doc would be rewritten empty
        sys.exit(
            f"error: {out} holds runs of {', '.join(dict.fromkeys(taken))} already; give a new "
            "--out, or --reuse to keep the finished ones"
        )
    import torch

    device = "cuda: " + torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    header = [
        "# Reproducing the chapter",
        "",
        f"Measured {date.today()} on {platform.machine()} with {os.cpu_count()} cores "
        f"({device}), Python {platform.python_version()}, torch {torch.__version__}.",
        f"Command: `DLX_DATA_DIR={data_dir} python scripts/reproduce.py --seeds {args.seeds}"
        + (f" --lstm-seeds {args.lstm_seeds}" if args.lstm_seeds else "")
        + (f" --only {args.only}" if args.only else "")
        + "".join(f" {o}" for o in args.overrides)
        + "` (`make reproduce SEEDS=N`).",
        "Each row: one Hydra multirun over seed = 2017, 2018, ...; mean ± sd (each seed's value).",
        "'reached' compares the mean with the published figure (>= for accuracies, <= for losses).",
        "'wall' is one seed's run (its metrics.json); 'listing' the whole multirun of all seeds,",
        "start-up included (a staged listing's two rows share one multirun).",
        "",
    ]
    table = [
        "| listing | what | metric | published | dlx | reached | Keras 3 / scikit-learn today "
        "| params | epochs | wall (mean) | listing | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    doc = Path(args.doc)
    doc.parent.mkdir(parents=True, exist_ok=True)
    # Hand-written notes (evidence, where a listing falls short) survive a regeneration.
    notes = ""
    if doc.is_file() and NOTES in doc.read_text():
        notes = "\n" + NOTES + doc.read_text().split(NOTES, 1)[1]
    done: dict[str, list[dict]] = {}
    lock = threading.Lock()  # the light listings finish in their own threads

    def one(item: Listing) -> None:
        n = args.lstm_seeds if (item.slow and args.lstm_seeds) else args.seeds
        seeds = [2017 + i for i in range(n)]
        extra = [f"dataset.root={cifar}"] if "cifar10" in item.experiment and cifar else []
        if item.light and args.jobs > 1 and "torch" in item.experiment:
            extra.append("trainer.num_threads=1")  # it shares the cores with another listing
        results = run(item.experiment, seeds, out, [*extra, *args.overrides], args.reuse)
        with lock:
            done[item.experiment] = results
            rows = [table_row(i, done[i.experiment]) for i in selected if i.experiment in done]
            doc.write_text("\n".join(header + table + rows) + "\n" + notes)

    # The one-core listings first, --jobs at a time; then the rest one after another, the slow
    # LSTM last; the table is rewritten after each (in the book's order): a run stopped at a
    # time limit (scripts/gpu_proof.sh) keeps what finished.
    experiments = list({i.experiment: i for i in reversed(selected)}.values())[::-1]  # staged: 1
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        list(pool.map(one, [i for i in experiments if i.light]))
    for item in sorted((i for i in experiments if not i.light), key=lambda item: item.slow):
        one(item)
    rows = [table_row(i, done[i.experiment]) for i in selected if i.experiment in done]
    total = time.perf_counter() - t_start
    whole = [
        f"**The whole run: {total:.0f} s** ({total / 60:.1f} min) for {len(done)} experiments, "
        f"in this one command (the one-core listings {args.jobs} at a time, the others alone).",
        "",
    ]
    doc.write_text("\n".join(header + whole + table + rows) + "\n" + notes)
    print(doc.read_text())
    print(f"total wall time: {total:.1f} s for {len(done)} experiments")


def table_row(item: Listing, results: list[dict]) -> str:
    values = [r[item.metric] for r in results if item.metric in r]
    if values and isinstance(values[0], list):
        shown = ", ".join(str(v) for v in values)
    elif values:
        shown = f"{fmt(values)} ({', '.join(f'{v:.4f}' for v in values)})"
    else:
        shown = "failed"
    first = results[0] if results else {}
    wall = statistics.mean(r.get("wall_time_s", 0) for r in results) if results else 0
    params = first.get("num_params")
    params = f"{params:,}" if isinstance(params, int) else "–"
    return (
        f"| {item.listing} | {item.what} | `{item.metric}` | {item.published} | {shown} | "
        f"{verdict(item, values)} | {item.today} | {params} | {first.get('epochs', '–')} | "
        f"{wall:.0f} s | {ELAPSED.get(item.experiment, 0):.0f} s | {len(values)} |"
    )


if __name__ == "__main__":
    main()
