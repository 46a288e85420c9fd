"""Learning curves: loss and each metric per epoch, train against val (test as a line)."""

from __future__ import annotations

from typing import Any

from dlx.viz.registry import Skip, figure
from dlx.viz.style import new_figure

COLOURS = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}


@figure("learning_curves")
def learning_curves(run: Any) -> Any:
    rows = run.history
    if not rows:
        raise Skip("no epochs")
    names: list[str] = []
    for row in rows:
        names += [k.split("/", 1)[1] for k in row if k.startswith("train/") and k[6:] not in names]
    if not names:
        raise Skip("metrics.csv has no train/* columns")
    from matplotlib.ticker import MaxNLocator

    fig = new_figure(5 * len(names), 4, run.options["dpi"])
    epochs = [int(r["epoch"]) for r in rows]
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        for split in ("train", "val"):
            key = f"{split}/{name}"
            points = [(e, r[key]) for e, r in zip(epochs, rows, strict=True) if key in r]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="o", color=COLOURS[split], label=split)
        test = run.metrics.get(f"test/{name}")
        if isinstance(test, (int, float)):
            ax.axhline(test, color=COLOURS["test"], linestyle="--", label=f"test {test:.4f}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{run.model_name}: learning curves")
    fig.tight_layout()
    return fig
