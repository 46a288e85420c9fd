"""`dlx predict ckpt=<checkpoint | run dir | .onnx> input=<file | folder | glob> [text=...]`.

New inputs through a trained model, with exactly the preprocessing of training, rebuilt
from what the run saved (classes, input shape, scale, image size and channels, or the
tokeniser, vocabulary and maxlen): the data set's own files are not needed. Prints a table
(input, predicted class, its probability, the top k) and writes `predictions.csv` into its
own run dir (`outputs/predict/<date>/<time>`, or `hydra.run.dir=`); an autoencoder writes
`reconstructions.png` (inputs above their reconstructions) and each input's error.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from dlx.core.errors import ConfigError

log = logging.getLogger("dlx")

GRID_MAX = 16  # inputs drawn in reconstructions.png


def options(cfg: DictConfig) -> Any:
    from dlx.core.roots import PredictConfig

    values = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(values, dict)
    values.pop("paths", None)
    opts = PredictConfig(**values)
    opts.check()
    return opts


def read_inputs(opts: Any, description: dict[str, Any]) -> tuple[Any, list[str]]:
    """(stored samples, a name for each) from input= or text=, as the run's data set would
    have stored them."""
    from dlx.data.inputs import encode_texts, find_files, image_files, read_images, read_texts

    prep = description["preprocessing"]
    if prep is None:
        raise ConfigError(
            "this run's inputs are feature vectors, which no file format gives; dlx predict "
            "reads images and texts (runs on image or text data sets)"
        )
    if prep["kind"] == "image":
        if opts.text is not None:
            raise ConfigError(
                "text= is for text runs; this run classifies images: give input=<image file "
                "| folder | glob>"
            )
        files = image_files(find_files(opts.input), opts.input)
        return read_images(files, prep), [str(f) for f in files]
    if opts.text is not None:
        texts, names = [opts.text], ["text"]
    else:
        texts, names = read_texts(find_files(opts.input), opts.column, opts.header)
    return encode_texts(texts, prep), names


def probabilities(out: np.ndarray, kind: str, outputs_are: str) -> np.ndarray:
    """Per-class probabilities [n, classes] (scores as they are, for estimators without)."""
    if outputs_are != "logits":
        return out.astype(np.float64)
    z = out.astype(np.float64)
    if kind == "binary":  # one logit: P(class 1)
        p = 0.5 * (1.0 + np.tanh(0.5 * z.reshape(len(z), -1)[:, :1]))
        return np.concatenate([1 - p, p], axis=1)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def predict(cfg: DictConfig) -> dict[str, Any]:
    from hydra.core.hydra_config import HydraConfig

    return run_predict(options(cfg), Path(HydraConfig.get().runtime.output_dir))


def run_predict(opts: Any, run_dir: Path) -> dict[str, Any]:
    """Predict what `opts` (PredictConfig) asks, writing into run_dir; a summary."""
    from dlx.predictors import load_predictor

    t0 = time.perf_counter()
    predictor = load_predictor(opts.ckpt, opts.accelerator)
    x, names = read_inputs(opts, predictor.description)
    out = predictor.outputs(x, opts.batch_size)
    if predictor.kind == "reconstruct":
        summary = reconstructions(predictor, x, out, names, run_dir)
    else:
        summary = classified(predictor, out, names, opts, run_dir)
    summary.update(
        inputs=len(names), source=str(predictor.source), device=predictor.device,
        wall_time_s=time.perf_counter() - t0,
    )  # fmt: skip
    print(f"dlx predict: {len(names)} input(s) on {predictor.device}  ->  {run_dir}")
    return summary


def classified(
    predictor: Any, out: np.ndarray, names: list[str], opts: Any, run_dir: Path
) -> dict[str, Any]:
    from dlx.core.io import atomic_write_text

    d = predictor.description
    classes = d["class_names"] or [str(i) for i in range(d["num_classes"])]
    probs = probabilities(out, predictor.kind, predictor.outputs_are)
    k = min(opts.top_k, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    shown = predictor.outputs_are != "scores"  # decision scores are not probabilities
    buf = io.StringIO()
    writer = csv.writer(buf)
    header = ["input", "class_id", "predicted", "probability" if shown else "score"]
    for i in range(2, k + 1):
        header += [f"top{i}", f"top{i}_{'probability' if shown else 'score'}"]
    writer.writerow(header)
    rows = []
    for name, top, p in zip(names, order, probs, strict=True):
        row: list[Any] = [name, int(top[0]), classes[top[0]], f"{p[top[0]]:.6g}"]
        for c in top[1:]:
            row += [classes[c], f"{p[c]:.6g}"]
        writer.writerow(row)
        rows.append((name, classes[top[0]], p[top[0]], [(classes[c], p[c]) for c in top]))
    atomic_write_text(buf.getvalue(), run_dir / "predictions.csv")
    print_table(rows, opts.print_rows, shown, len(names))
    counts: dict[str, int] = {}
    for _, label, _, _ in rows:
        counts[label] = counts.get(label, 0) + 1
    return {"predicted": counts}


def print_table(rows: list[Any], limit: int, probabilities: bool, total: int) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    if not limit:
        return
    what = "probability" if probabilities else "score"
    table = Table(show_edge=False)
    table.add_column("input", overflow="fold")
    table.add_column("predicted")
    table.add_column(what, justify="right")
    table.add_column("top k", overflow="fold")
    for name, label, p, top in rows[:limit]:
        tops = ", ".join(f"{c} {v:.3f}" for c, v in top)
        table.add_row(name, label, f"{p:.3f}", tops)
    console = Console(file=sys.stdout)
    console.print(table)
    if total > limit:
        console.print(f"... and {total - limit} more in predictions.csv (print_rows={limit})")


def reconstructions(
    predictor: Any, x: Any, out: np.ndarray, names: list[str], run_dir: Path
) -> dict[str, Any]:
    """Autoencoders: each input's squared error, and a grid of inputs over outputs."""
    from dlx.core.data import to_input
    from dlx.core.io import atomic_write_text

    d = predictor.description
    inputs = to_input(x, d["scale"]).reshape(len(x), -1).float().numpy()
    out = out.reshape(len(out), -1)
    errors = ((inputs - out) ** 2).mean(axis=1)
    lines = ["input,mse"] + [f"{_csv_cell(n)},{e:.6g}" for n, e in zip(names, errors, strict=True)]
    atomic_write_text("\n".join(lines) + "\n", run_dir / "predictions.csv")
    draw_grid(inputs[:GRID_MAX], out[:GRID_MAX], tuple(d["input_shape"]), run_dir)
    print(f"reconstruction mse: mean {errors.mean():.6g} over {len(errors)} input(s)")
    return {"mse": float(errors.mean())}


def _csv_cell(text: str) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow([text])
    return buf.getvalue().rstrip("\r\n")


def draw_grid(inputs: np.ndarray, outputs: np.ndarray, shape: tuple, run_dir: Path) -> None:
    from dlx.viz.style import as_images, new_figure, save_png, show

    chw = shape if len(shape) == 3 else (1, *shape) if len(shape) == 2 else None
    if chw is None:
        return
    n = len(inputs)
    fig = new_figure(max(n, 2) * 1.0, 2.2)
    for row, (what, arr) in enumerate((("input", inputs), ("reconstruction", outputs))):
        tiles = as_images(np.clip(arr, 0, 1), chw)  # type: ignore[arg-type]
        for i in range(n):
            ax = fig.add_subplot(2, n, row * n + i + 1)
            show(ax, tiles[i], "gray", vmin=0.0, vmax=1.0)
            if i == 0:
                ax.set_ylabel(what, fontsize=8)
    save_png(fig, run_dir / "reconstructions.png")


def main(argv: list[str]) -> None:
    from dlx.command import run_command

    run_command("predict", predict, argv)
