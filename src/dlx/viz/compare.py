"""`dlx runs compare=[...]`: the learning curves of several runs on one figure, one colour a
run, train solid and val dashed, one panel a metric (loss, acc, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlx.viz.style import new_figure, save_png

MAX_PANELS = 4


def metric_names(histories: list[list[dict[str, float]]]) -> list[str]:
    """The metrics with a train/ or val/ column in any history, loss first."""
    names: list[str] = []
    for rows in histories:
        for row in rows:
            for key in row:
                split, _, name = key.partition("/")
                if split in ("train", "val") and name and name not in names:
                    names.append(name)
    names = sorted(names, key=lambda n: n != "loss")  # stable: the others keep their order
    return names[:MAX_PANELS]


def plot_compare(
    labelled: list[tuple[str, list[dict[str, float]]]], path: Path, dpi: int = 100
) -> Path:
    """One panel a metric, one colour a run (label, metrics.csv rows); written to path."""
    from matplotlib.ticker import MaxNLocator

    names = metric_names([rows for _, rows in labelled])
    fig = new_figure(5 * max(len(names), 1), 4.5, dpi)
    colours = _colours(len(labelled))
    for i, name in enumerate(names):
        ax: Any = fig.add_subplot(1, len(names), i + 1)
        for (label, rows), colour in zip(labelled, colours, strict=True):
            for split, style in (("train", "-"), ("val", "--")):
                key = f"{split}/{name}"
                points = [(r["epoch"], r[key]) for r in rows if key in r]
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, style, marker=".", color=colour, label=f"{label} {split}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"{len(labelled)} runs: learning curves (train solid, val dashed)")
    fig.tight_layout()
    return save_png(fig, path, dpi)


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(i if n <= 10 else i / max(n - 1, 1)) for i in range(n)]
