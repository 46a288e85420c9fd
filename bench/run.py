"""`make bench`: dlx against a minimal PyTorch loop, Keras 3 and scikit-learn, side by side.

For the book's MLP (6-9) and CNN (6-13) on MNIST, every contender does the same epochs
(60,000 images, same batch and optimizer) in its own fresh process. Runs alternate
(A B C ... A B C ...), each run's first epoch is a warm-up and is dropped, a run's value is
the median of its other epochs, and ratios to the minimal loop are taken pair by pair
(same repetition), then summarised by their median. Also measured: CLI start-up, data
loading, and the MLP's achieved GFLOP/s against the machine's matmul peak.

    DLX_DATA_DIR=../shared/data python bench/run.py            # everything, ~20 min here
    python bench/run.py --only mlp --reps 5                    # one section
    python bench/run.py --only chapter --listings lstm --reps 3  # one of the chapter's

Writes the tables to bench/RESULTS.md (or --out) and prints them; a section re-measured
alone replaces just its own, under a line naming the sitting's CPU and fp32 peak (this VM's
host CPU changes from one day to the next).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = Path(sys.executable).parent
DLX = str(BIN / "dlx")
PY = sys.executable
sys.path.insert(0, str(HERE))
from common import SETUPS  # noqa: E402


def last_json(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    out = subprocess.run(
        cmd,
        check=False,
        capture_output=True,
        text=True,
        cwd=HERE,
        env={**os.environ, **(env or {})},
    )
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed: {' | '.join(tail)}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def dlx_runner(model: str, root: str, epochs: int, *overrides: str) -> Callable[[], list[float]]:
    """dlx as users run it: the CLI; its epoch times come from its own metrics.json."""

    def run() -> list[float]:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [
                DLX, "train", f"experiment={SETUPS[model].experiment}",
                f"dataset.root={root}", "dataset.download=false", "dataset.val_split=0",
                f"trainer.max_epochs={epochs}", "trainer.progress=false",
                "trainer.checkpoint=false", f"hydra.run.dir={tmp}", *overrides,
            ]  # fmt: skip
            out = subprocess.run(cmd, check=False, capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"dlx {' '.join(overrides)} failed: {out.stderr.strip()[-300:]}")
            return json.loads(Path(tmp, "metrics.json").read_text())["epoch_time_s"]

    return run


def script_runner(script: str, *args: str) -> Callable[[], list[float]]:
    return lambda: last_json([PY, str(HERE / script), *args])["epoch_time_s"]


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def contenders(model: str, root: str, epochs: int) -> dict[str, Callable[[], list[float]]]:
    """label -> runner; the minimal loop is the reference."""
    d = lambda *o: dlx_runner(model, root, epochs, *o)  # noqa: E731
    common = ["--root", root, "--epochs", str(epochs)]
    minimal = ("minimal_loop.py", "--model", model, *common)
    runs = {
        "minimal loop (fp32 eager)": script_runner(*minimal),
        # the same loop with the one process-wide setting dlx's trainer makes: this pair
        # separates the loop's own overhead from the allocator's page faults
        "minimal loop + glibc keeps freed memory": script_runner(*minimal, "--keep-freed-memory"),
        "dlx fp32 eager": d(*(["model.channels_last=false"] if model == "cnn" else [])),
        "dlx bf16-mixed": d("trainer.precision=bf16-mixed"),
        "dlx compile": d("trainer.compile=true"),
        "dlx bf16-mixed + compile": d("trainer.precision=bf16-mixed", "trainer.compile=true"),
    }
    if model == "cnn":
        runs["minimal loop channels_last"] = script_runner(
            "minimal_loop.py", "--model", model, "--channels-last", *common
        )
        runs["dlx channels_last (the CNN's default)"] = d("model.channels_last=true")
        runs["dlx bf16-mixed + channels_last"] = d(
            "trainer.precision=bf16-mixed", "model.channels_last=true"
        )
    if have("keras"):
        keras_args = ("--model", model, *common)
        runs["Keras 3, torch backend"] = script_runner(
            "keras_loop.py", "--backend", "torch", *keras_args
        )
        if have("jax"):
            runs["Keras 3, JAX backend"] = script_runner(
                "keras_loop.py", "--backend", "jax", *keras_args
            )
    if model == "mlp":
        runs["scikit-learn MLPClassifier"] = script_runner("sklearn_mlp.py", *common)
    return runs


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3f} ({min(xs):.3f}–{max(xs):.3f})"


def pair_ratios(values: list[float | None], refs: list[float | None]) -> str:
    """Each repetition's value over the reference's in the same repetition, summarised."""
    ratios = [v / r for v, r in zip(values, refs, strict=True) if v is not None and r is not None]
    return spread(ratios) if ratios else "–"


def bench_model(model: str, root: str, reps: int, epochs: int) -> list[str]:
    runs = contenders(model, root, epochs)
    values: dict[str, list[float | None]] = {k: [] for k in runs}
    errors: dict[str, str] = {}
    for rep in range(reps):
        for label, run in runs.items():
            if label in errors:
                values[label].append(None)
                continue
            try:
                times = run()
                values[label].append(statistics.median(times[1:] or times))
            except (RuntimeError, ValueError, KeyError) as err:
                errors[label] = str(err).splitlines()[0][:200]
                values[label].append(None)
            v = values[label][-1]
            print(f"  {model} rep {rep + 1}/{reps}  {label:34s} {v if v is None else round(v, 3)}")
    ref = values["minimal loop (fp32 eager)"]
    ref_kept = values["minimal loop + glibc keeps freed memory"]
    s = SETUPS[model]
    rows = [
        f"### {model.upper()} ({s.experiment}, batch {s.batch_size}, 60,000 images/epoch)",
        "",
        "| contender | s/epoch, median (min–max) | ratio to the minimal loop | ratio to the "
        "minimal loop + glibc setting |" + (" GFLOP/s |" if model == "mlp" else ""),
        "|---|---|---|---|" + ("---|" if model == "mlp" else ""),
    ]
    for label, vs in values.items():
        ok = [v for v in vs if v is not None]
        if not ok:
            rows.append(
                f"| {label} | failed: {errors.get(label, '?')} | – | – |"
                + (" – |" if model == "mlp" else "")
            )
            continue
        cells = f"| {label} | {spread(ok)} | {pair_ratios(vs, ref)} | {pair_ratios(vs, ref_kept)} |"
        if model == "mlp":
            cells += f" {s.epoch_gflop / statistics.median(ok):.0f} |"
        rows.append(cells)
    rows.append("")
    return rows


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - t0


# Seconds from process start to the end of the imports, on the clock dlx's startup_s uses
# (/proc, see engine/runtime.process_age); a wall time would also count the exit, which
# for torch takes a few tenths of a second.
IMPORT_AGE = """
import os, {modules}
stat = open('/proc/self/stat').read().rsplit(')', 1)[1].split()
print(float(open('/proc/uptime').read().split()[0]) - int(stat[19]) / os.sysconf('SC_CLK_TCK'))
"""


def import_age(modules: str, env: dict[str, str]) -> float:
    code = IMPORT_AGE.format(modules=modules)
    out = subprocess.run([PY, "-c", code], check=True, capture_output=True, text=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def bench_startup(n: int) -> list[str]:
    """Rounds of dlx --help, import torch, import torch + torch._dynamo, dlx train.

    CPU speed on a shared VM drifts by 30% from minute to minute, so each round runs all
    four back to back and dlx train's cost over `import torch` is taken within the round.
    Bytecode caching is on (as for a user, unlike a PYTHONDONTWRITEBYTECODE shell), and one
    unmeasured round first writes the caches.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    rows: dict[str, list[float]] = {k: [] for k in ("help", "torch", "dynamo", "first", "wall")}
    for i in range(n + 1):
        with tempfile.TemporaryDirectory() as tmp:
            help_s = timed([DLX, "--help"], env)
            torch_s = import_age("torch", env)
            dynamo_s = import_age("torch, torch._dynamo", env)
            wall = timed([DLX, "train", "trainer.max_epochs=1", f"hydra.run.dir={tmp}"], env)
            first = json.loads(Path(tmp, "metrics.json").read_text())["startup_s"]
        if i == 0:
            continue  # writes the bytecode caches
        for key, value in zip(rows, (help_s, torch_s, dynamo_s, first, wall), strict=True):
            rows[key].append(value)
    over = [f - t for f, t in zip(rows["first"], rows["torch"], strict=True)]
    return [
        f"### Start-up (seconds, median (min–max) of {n} rounds, each runs all four)",
        "",
        "| what | s |",
        "|---|---|",
        f"| `dlx --help`, whole command | {spread(rows['help'])} |",
        f"| `import torch`: process start to the end of the import | {spread(rows['torch'])} |",
        "| `import torch, torch._dynamo` (torch.optim imports it; dlx defers it in eager "
        f"runs) | {spread(rows['dynamo'])} |",
        f"| `dlx train`: process start to the end of its first step | {spread(rows['first'])} |",
        f"| the same minus `import torch` in the same round: dlx's own start-up | {spread(over)} |",
        f"| `dlx train` (digits MLP, 1 epoch, 3 figures): whole command | {spread(rows['wall'])} |",
        "",
    ]


def bench_data(root: str) -> list[str]:
    sys.path.insert(0, str(REPO / "scripts"))
    from reproduce import cifar_root  # builds CIFAR-10 batches from the shared JPEG copy

    cache = Path(os.environ.get("DLX_CACHE_DIR", Path.home() / ".cache" / "dlx"))
    args = [PY, str(HERE / "data_load.py"), "--root", root]
    cifar = cifar_root(Path(root), cache)
    if cifar is not None:
        args += ["--cifar-root", str(cifar)]
    res = last_json(args)
    rows = [
        "### Data loading (dlx's loaders; the first load reads the files and writes the cache)",
        "",
        "| data set | train / test | first load s | cached load s |",
        "|---|---|---|---|",
    ]
    for name, r in res.items():
        sizes = f"{r['train']:,} / {r['test']:,}"
        rows.append(f"| {name} | {sizes} | {r['first_s']:.2f} | {r['cached_s']:.2f} |")
    return [*rows, ""]


CHAPTER = {  # listing -> (dlx overrides, the minimal loop's label)
    "cnn_cifar": ([], "minimal loop (fp32 eager)"),
    "lstm": ([], "minimal loop (nn.LSTMCell loop, the same masks)"),
    "transfer": (["~stages", "dataset.classes=[0,1,2,3,4]"], "minimal loop (fp32 eager)"),
}


def bench_chapter(
    root: str, reps: int, epochs: int, peak: float, models: list[str]
) -> dict[str, list[str]]:
    """The slow listings, each next to a minimal loop and Keras 3 on both backends, full
    epochs on the real data (the first epoch of a run dropped as a warm-up): a section each,
    so that one listing can be re-measured (--listings) without the others."""
    sys.path.insert(0, str(REPO / "scripts"))
    from reproduce import cifar_root  # builds CIFAR-10 batches from the shared JPEG copy

    cache = Path(os.environ.get("DLX_CACHE_DIR", Path.home() / ".cache" / "dlx"))
    sections: dict[str, list[str]] = {}
    for model in models:
        extra, minimal_label = CHAPTER[model]
        data_root = str(cifar_root(Path(root), cache)) if model == "cnn_cifar" else root
        loop = ("chapter_loops.py", "--root", root, "--model", model, "--epochs", str(epochs))
        runs: dict[str, Callable[[], list[float]]] = {
            minimal_label: script_runner(*loop, "--impl", "torch"),
            "dlx fp32 eager": dlx_runner(model, data_root, epochs, *extra),
        }
        if model == "lstm":  # the default runs the C time loop (rnn_native); torch ops:
            runs["dlx, model.impl=fused_bptt (torch ops)"] = dlx_runner(
                model, data_root, epochs, *extra, "model.impl=fused_bptt"
            )
        if have("keras"):
            runs["Keras 3, torch backend"] = script_runner(*loop, "--impl", "keras")
            if have("jax"):
                runs["Keras 3, JAX backend"] = script_runner(
                    *loop, "--impl", "keras", "--backend", "jax"
                )
        values: dict[str, list[float | None]] = {k: [] for k in runs}
        for rep in range(reps):
            for label, run in runs.items():
                try:
                    times = run()
                    values[label].append(statistics.median(times[1:] or times))
                except (RuntimeError, ValueError, KeyError) as err:
                    print(f"  {model} {label}: failed: {str(err)[:200]}")
                    values[label].append(None)
                v = values[label][-1]
                print(
                    f"  {model} rep {rep + 1}/{reps}  {label:44s} {v if v is None else round(v, 2)}"
                )
        s = SETUPS[model]
        rows = [
            f"### {s.experiment} (batch {s.batch_size}, full epochs)",
            "",
            "| contender | s/epoch, median (min–max) | ratio to dlx |",
            "|---|---|---|",
        ]
        ref = values["dlx fp32 eager"]
        for label, vs in values.items():
            ok = [v for v in vs if v is not None]
            cell = spread(ok) if ok else "failed"
            rows.append(f"| {label} | {cell} | {pair_ratios(vs, ref)} |")
        rows.append("")
        if not math.isnan(s.epoch_gflop):  # what the arithmetic alone takes in this sitting
            rows += [
                f"The epoch's matmuls alone are {s.epoch_gflop / 1e3:.2f} TFLOP: "
                f"{s.epoch_gflop / peak:.1f} s at this sitting's fp32 peak ({peak:.0f} "
                "GFLOP/s, `bench/peak.py`).",
                "",
            ]
        sections[f"chapter_{model}"] = rows
    return sections


def bench_threads(root: str, reps: int) -> list[str]:
    """Two `dlx train` at once on this machine's cores: torch's default threads in each (they
    fight over the cores) against trainer.num_threads=1 each."""
    cmd = [DLX, "train", "experiment=book/6_9_mlp_mnist", f"dataset.root={root}",
           "dataset.download=false", "trainer.max_epochs=3", "trainer.progress=false",
           "trainer.checkpoint=false", "viz.enabled=false"]  # fmt: skip
    cases = {
        "torch's default threads, each": [],
        "trainer.num_threads=1, each": ["trainer.num_threads=1"],
    }
    wall: dict[str, list[float]] = {k: [] for k in cases}
    epoch: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(reps):
        for label, extra in cases.items():
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                procs = [
                    subprocess.Popen([*cmd, *extra, f"hydra.run.dir={tmp}/{i}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                    for i in range(2)
                ]  # fmt: skip
                for p in procs:
                    p.wait()
                wall[label].append(time.perf_counter() - t0)
                for i in range(2):
                    times = json.loads(Path(tmp, str(i), "metrics.json").read_text())[
                        "epoch_time_s"
                    ]
                    epoch[label].append(statistics.median(times[1:]))
            print(f"  threads {label:32s} {wall[label][-1]:.1f} s")
    rows = [
        "### Two runs at once on the 2 cores (the 6-9 MLP on MNIST, 3 epochs each)",
        "",
        "| threads | both done, s | s/epoch of each, median (min–max) |",
        "|---|---|---|",
    ]
    rows += [f"| {k} | {spread(wall[k])} | {spread(epoch[k])} |" for k in cases]
    return [*rows, ""]


def jpeg_tree(archive: Path) -> Path:
    """The shared CIFAR-10 JPEG archive extracted (once) into the cache: train/<class>/..."""
    import tarfile

    cache = Path(os.environ.get("DLX_CACHE_DIR", Path.home() / ".cache" / "dlx"))
    tree = cache / "cifar10-jpeg"
    if not (tree / "test").is_dir():
        tree.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="data")
    return tree


def bench_stream(jpeg_root: str, reps: int, batches: int = 150) -> list[str]:
    """The 6-12 CNN on the CIFAR-10 JPEG tree as an image folder: decoded once into memory
    (the cached path) against decoded on the fly by 2 DataLoader workers, side by side."""
    base = [
        "experiment=book/6_12_cnn_cifar10", "dataset=image_folder", f"dataset.root={jpeg_root}",
        "trainer.max_epochs=3", f"trainer.limit_train_batches={batches}",
        "trainer.limit_eval_batches=1", "trainer.progress=false", "trainer.checkpoint=false",
        "viz.enabled=false", "dataset.val_split=0",
    ]  # fmt: skip
    runs = {
        "in memory (decoded once, cached)": ["dataset.in_memory=true"],
        "streamed, 2 workers": ["dataset.in_memory=false", "trainer.num_workers=2"],
        "streamed, 2 workers, crop + flip": [
            *("dataset.in_memory=false", "trainer.num_workers=2"),
            *("dataset.random_crop=4", "dataset.random_flip=true"),
        ],
    }
    values: dict[str, list[float]] = {k: [] for k in runs}
    for rep in range(reps):
        for label, extra in runs.items():
            with tempfile.TemporaryDirectory() as tmp:
                cmd = [DLX, "train", *base, *extra, f"hydra.run.dir={tmp}"]
                out = subprocess.run(cmd, check=False, capture_output=True, text=True)
                if out.returncode != 0:
                    raise RuntimeError(f"{label}: {out.stderr.strip()[-300:]}")
                times = json.loads(Path(tmp, "metrics.json").read_text())["epoch_time_s"]
            values[label].append(statistics.median(times[1:]))
            print(f"  stream rep {rep + 1}/{reps}  {label:34s} {values[label][-1]:.3f}")
    ref = values["in memory (decoded once, cached)"]
    rows = [
        f"### Streamed data: the 6-12 CNN on the CIFAR-10 JPEG tree ({batches} batches of 32 "
        "a timed epoch)",
        "",
        "| path | s/epoch, median (min–max) | ratio to in memory |",
        "|---|---|---|",
    ]
    for label, vs in values.items():
        rows.append(f"| {label} | {spread(vs)} | {pair_ratios(list(vs), list(ref))} |")
    return [*rows, ""]


def bench_peak() -> tuple[list[str], dict]:
    res = last_json([PY, str(HERE / "peak.py")])
    return [
        f"Matmul peak (torch.mm 2048x2048, best of 10, {res['threads']} threads): "
        f"fp32 {res['fp32_gflops']:.0f} GFLOP/s, bf16 {res['bf16_gflops']:.0f} GFLOP/s. "
        f"The MLP epoch is {SETUPS['mlp'].epoch_gflop:.0f} GFLOP (forward + backward).",
        "",
    ], res


def cpu_model() -> str:
    with contextlib.suppress(OSError, StopIteration):
        return next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return "?"


def machine() -> list[str]:
    cpu = cpu_model()
    versions = {}
    for mod in ("torch", "sklearn", "keras", "jax", "dlx"):
        if have(mod):
            out = subprocess.run(
                [PY, "-c", f"import {mod}; print({mod}.__version__)"],
                capture_output=True,
                text=True,
                # Keras 3 defaults to TensorFlow, which the bench does not use
                env={**os.environ, "KERAS_BACKEND": "torch"},
            )
            versions[mod] = out.stdout.strip() or "?"
    return [
        f"Measured {datetime.date.today()} on {platform.machine()} {cpu}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + ".",
        "",
    ]


SECTIONS = ("peak", "mlp", "cnn", "chapter", "stream", "threads", "startup", "data")


def marked(name: str, lines: list[str]) -> list[str]:
    """A section between markers, so that a later `--only` run can replace just it."""
    return [f"<!-- bench:{name} -->", *lines, f"<!-- /bench:{name} -->", ""]


def splice(text: str, sections: dict[str, list[str]], note: str) -> str:
    """`text` with the marked sections replaced; a section it lacks goes before the total."""
    for name, lines in sections.items():
        titled = bool(lines) and lines[0].startswith("#")  # the note goes under a title
        body = [lines[0], "", note, *lines[1:]] if titled else [note, "", *lines]
        new = "\n".join(marked(name, body)) + "\n"
        found = re.search(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->\n\n?", text, re.S)
        if found is None:
            at = text.find("Total bench time")
            at = len(text) if at < 0 else at
            text = text[:at] + new + text[at:]
        else:
            text = text[: found.start()] + new + text[found.end() :]
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=os.environ.get("DLX_DATA_DIR", "data"))
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3, help="per run; the first is a warm-up")
    p.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help="comma-separated sections; with some of them, only those are replaced in --out",
    )
    p.add_argument(
        "--listings",
        default=",".join(CHAPTER),
        help="with the chapter section: which of its listings to run",
    )
    p.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = p.parse_args()
    only, listings = args.only.split(","), args.listings.split(",")
    if unknown := set(only) - set(SECTIONS):
        sys.exit(f"error: unknown section(s) {', '.join(sorted(unknown))}; one of {SECTIONS}")
    if unknown := set(listings) - set(CHAPTER):
        sys.exit(f"error: unknown listing(s) {', '.join(sorted(unknown))}; one of {tuple(CHAPTER)}")
    needs_data = {"mlp", "cnn", "data"} & set(only)
    if needs_data and not Path(args.root, "MNIST", "raw").is_dir():
        sys.exit(f"error: no MNIST under {args.root}/MNIST/raw; set DLX_DATA_DIR or --root")
    root = str(Path(args.root).resolve())
    t0 = time.perf_counter()
    cmd = " ".join(["python bench/run.py", *sys.argv[1:]])
    sections: dict[str, list[str]] = {}
    peak_lines, peak = bench_peak()  # every sitting: its notes name the peak it ran at
    if "peak" in only:
        sections["peak"] = peak_lines
    for model in ("mlp", "cnn"):
        if model in only:
            sections[model] = bench_model(model, root, args.reps, args.epochs)
    if "chapter" in only:
        sections |= bench_chapter(
            root, args.reps, max(args.epochs, 2), peak["fp32_gflops"], listings
        )
    if "stream" in only:
        jpeg = Path(args.root, "cifar10", "cifar10-jpeg.tar.gz")
        if jpeg.is_file():
            sections["stream"] = bench_stream(str(jpeg_tree(jpeg)), args.reps)
    if "threads" in only:
        sections["threads"] = bench_threads(root, args.reps)
    if "startup" in only:
        sections["startup"] = bench_startup(max(args.reps, 5))
    if "data" in only:
        sections["data"] = bench_data(root)
    took = time.perf_counter() - t0
    out = Path(args.out)
    text: str | None = None
    partial = set(only) != set(SECTIONS) or set(listings) != set(CHAPTER)
    if partial and out.exists():
        # this VM's host CPU changes between sittings (an Intel Xeon, an AMD EPYC): say which
        note = (
            f"Re-measured {datetime.date.today()} alone on {cpu_model()} (fp32 peak "
            f"{peak['fp32_gflops']:.0f} GFLOP/s): `{cmd}` ({took:.0f} s)."
        )
        text = splice(out.read_text(), sections, note)
    if text is None:
        lines = ["# dlx benchmark", "", *machine()]
        lines += [
            f"Command: `DLX_DATA_DIR=... {cmd}` ({args.reps} repetitions, {args.epochs} "
            "epochs a run, the first dropped).",
            "",
        ]
        for name, section in sections.items():
            lines += marked(name, section)
        lines.append(f"Total bench time: {took:.0f} s.")
        text = "\n".join(lines) + "\n"
    out.write_text(text)
    print("\n" + text)


if __name__ == "__main__":
    main()
