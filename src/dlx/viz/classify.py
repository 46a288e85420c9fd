"""Classifier figures: the confusion matrix, the book's 6-3 grid of test samples with their
predicted labels (wrong ones in red) and 6-1's decision regions of a 2-D classifier."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlx.viz.registry import Skip, figure
from dlx.viz.style import as_images, new_figure, show

# Labels in the predictions grid: 9 pt, and as many characters as fit a 1-inch tile.
LABEL_PT = 9
LABEL_CHARS = 12
# The book's plot_decision_regions colours and markers, one per class.
COLOURS = ("red", "blue", "lightgreen", "gray", "cyan", "orange", "purple", "brown")
MARKERS = ("s", "x", "o", "^", "v", "D", "P", "*")


@figure("confusion_matrix")
def confusion_matrix(run: Any) -> Any:
    run.require_classifier()
    name, _ = run.eval_split()
    true, pred = run.labels(name), run.predict(name)
    names = run.class_names()
    k = len(names)
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (true.astype(np.int64), pred.astype(np.int64)), 1)
    side = min(4 + 0.35 * k, 12)
    fig = new_figure(side + 1, side, run.options["dpi"])
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(counts, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if k <= 20:
        top = counts.max() or 1
        for (i, j), c in np.ndenumerate(counts):
            colour = "white" if c > top / 2 else "black"
            ax.text(j, i, str(c), ha="center", va="center", color=colour, fontsize=8)
    ticks = range(k)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xticklabels(names, rotation=45 if max(map(len, names)) > 2 else 0, ha="right")
    ax.set_yticklabels(names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = float((true == pred).mean()) if len(true) else float("nan")
    ax.set_title(f"{run.model_name}: {name} set, {len(true):,} samples, acc {acc:.4f}")
    fig.tight_layout()
    return fig


@figure("predictions")
def predictions(run: Any) -> Any:
    """The book's 6-3: test samples with the predicted label, green if right, red if wrong
    (the true label below it, in brackets)."""
    run.require_classifier()
    chw = run.require_images()
    name, split = run.eval_split()
    n = min(run.options["samples"], len(split))
    if n == 0:
        raise Skip(f"the {name} split is empty")
    images = as_images(_scaled(run, split, n), chw)
    pred, true = run.predict(name)[:n], run.labels(name)[:n]
    names = run.class_names()
    cols = 8
    rows = math.ceil(n / cols)
    fig = new_figure(cols, rows + 0.5, run.options["dpi"])
    fig.subplots_adjust(
        left=0.01, right=0.99, bottom=0.01, top=1 - 0.45 / (rows + 0.5), hspace=0.05, wspace=0.05
    )
    box = {"facecolor": "white", "pad": 1, "linewidth": 0}
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        show(ax, images[i], "gray_r", vmin=0.0, vmax=max(1.0, float(images[i].max())))
        right = pred[i] == true[i]
        # One readable size for every label: the prediction at the top, a wrong one's true
        # label at the bottom, each cut to what fits a tile (CIFAR's "automobile" does).
        colour = "green" if right else "red"
        ax.text(0, 1, _fit(names[pred[i]]), color=colour, fontsize=LABEL_PT, va="top",
                transform=ax.transAxes, bbox=box)  # fmt: skip
        if not right:
            ax.text(0, 0, f"({_fit(names[true[i]], LABEL_CHARS - 2)})", color=colour,
                    fontsize=LABEL_PT, va="bottom", transform=ax.transAxes, bbox=box)  # fmt: skip
    wrong = int((pred != true).sum())
    fig.suptitle(
        f"{run.model_name}: first {n} {name} samples, predicted label "
        f"({wrong} wrong in red, true label below in brackets)",
        fontsize=10,
    )
    return fig


def _fit(name: str, chars: int | None = None) -> str:
    """`name` cut to `chars` (a tile's width at LABEL_PT), its end replaced by an ellipsis."""
    chars = chars or LABEL_CHARS
    return name if len(name) <= chars else name[: chars - 1] + "\u2026"


def _scaled(run: Any, split: Any, n: int) -> np.ndarray:
    """The first n samples as the model sees them (scaled floats), as numpy."""
    x = split.take(slice(0, n)).x.detach().cpu().numpy().astype(np.float32)
    scale = run.data.scale
    return x if scale is None else x * scale


@figure("decision_regions")
def decision_regions(run: Any) -> Any:
    """The book's 6-1: the classes a 2-D classifier assigns over the plane, and the points."""
    spec = run.spec
    if spec.vocab_size is not None:
        raise Skip("inputs are token ids")
    if spec.input_size != 2:
        raise Skip(f"{spec.input_size} input features, not 2")
    run.require_classifier()
    classify = _torch_labeller(run) if run.model is not None else _linear_labeller(run)
    splits = run.data.splits()
    points = {
        n: (_scaled(run, s, len(s)).reshape(len(s), 2), s.y.cpu().numpy())
        for n, s in splits.items()
    }
    every = np.concatenate([p[0] for p in points.values()])
    lo, hi = every.min(axis=0) - 1, every.max(axis=0) + 1
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], 300), np.linspace(lo[1], hi[1], 300))
    z = classify(np.c_[xx.ravel(), yy.ravel()].astype(np.float32)).reshape(xx.shape)
    names = run.class_names()
    k = len(names)
    from matplotlib.colors import ListedColormap

    fig = new_figure(6, 5, run.options["dpi"])
    ax = fig.add_subplot(1, 1, 1)
    colours = [COLOURS[i % len(COLOURS)] for i in range(k)]
    ax.contourf(xx, yy, z, levels=np.arange(k + 1) - 0.5, alpha=0.4, cmap=ListedColormap(colours))
    for split, (x, y) in points.items():
        for c in range(k):
            sel = y == c
            if not sel.any():
                continue
            marker = MARKERS[c % len(MARKERS)]
            style = (
                {"c": colours[c]}
                if split == "train" or marker == "x"
                else {"facecolors": "none", "edgecolors": colours[c]}
            )
            label = names[c] if split == "train" else f"{names[c]} ({split})"
            ax.scatter(x[sel, 0], x[sel, 1], marker=marker, alpha=0.8, label=label, **style)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("X1")
    ax.set_ylabel("X2")
    ax.legend(loc="upper left")
    name, _ = run.eval_split()
    acc = run.metrics.get(f"{name}/acc")
    score = f" ({name} acc {acc:.2f})" if isinstance(acc, (int, float)) else ""
    ax.set_title(f"{run.model_name} decision regions{score}")
    fig.tight_layout()
    return fig


def _torch_labeller(run: Any) -> Any:
    import torch

    def classify(points: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(points).to(run.device)
        return run.task.predict(run.forward(x)).cpu().numpy()

    return classify


def _linear_labeller(run: Any) -> Any:
    """A scikit-learn linear model from its model.npz (coef_, intercept_, classes_ and a
    scaler's statistics): the plane is classified without unpickling anything."""
    path = run.run_dir / "model.npz"
    if not path.is_file():
        raise Skip("no model.npz with the fitted arrays")
    from dlx.core.io import read_npz

    arrays = read_npz(path)

    def one(suffix: str) -> np.ndarray | None:
        found = [v for k, v in arrays.items() if k == suffix or k.endswith(f".{suffix}")]
        return found[0] if len(found) == 1 else None

    coef, intercept = one("coef_"), one("intercept_")
    if coef is None or intercept is None:
        raise Skip("a scikit-learn model's regions are drawn for linear models (coef_) only")
    classes = one("classes_")
    mean, scale, minimum = (arrays.get(f"scaler.{a}") for a in ("mean_", "scale_", "min_"))

    def classify(points: np.ndarray) -> np.ndarray:
        z = points.astype(np.float64)
        if mean is not None and scale is not None:
            z = (z - mean) / scale
        elif minimum is not None and scale is not None:
            z = z * scale + minimum
        scores = z @ np.atleast_2d(coef).T + intercept
        idx = (scores[:, 0] > 0).astype(int) if scores.shape[1] == 1 else scores.argmax(axis=1)
        return idx if classes is None else classes[idx]

    return classify
