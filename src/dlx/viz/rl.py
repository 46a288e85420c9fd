"""The book's 6-16: the Q matrix a Q-learning run learned, normalised to 100, as a heat map,
with the greedy path from the start state drawn over it (each move s -> a is cell [s, a])."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from dlx.viz.registry import Skip, figure
from dlx.viz.style import new_figure


@figure("q_matrix")
def q_matrix(run: Any) -> Any:
    q = run.metrics.get("q_matrix")
    if not q:
        raise Skip("not Q-learning")
    q = np.asarray(q, dtype=np.float64)
    path = [int(s) for s in run.metrics.get("greedy_path") or []]
    n = len(q)
    side = min(4 + 0.5 * n, 12)
    fig = new_figure(side + 1, side, run.options["dpi"])
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(q, cmap="YlGn", vmin=0, vmax=max(100.0, float(q.max())))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Q / max Q x 100")
    if n <= 12:
        for (i, j), v in np.ndenumerate(q):
            ax.text(
                j,
                i,
                f"{v:.0f}",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if v > 60 else "black",
            )
    moves = list(itertools.pairwise(path))
    from matplotlib.patches import Rectangle

    for i, (s, a) in enumerate(moves, 1):
        ax.add_patch(
            Rectangle((a - 0.5, s - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5)
        )
        ax.text(a - 0.42, s - 0.42, str(i), color="red", fontweight="bold", va="top")
    arrow = {"arrowstyle": "-|>", "color": "red", "linewidth": 1.5, "mutation_scale": 18}
    for (s, a), (s2, a2) in itertools.pairwise(moves):  # move i ends where move i+1 starts
        ax.annotate(
            "", xy=(a2, s2), xytext=(a, s), arrowprops={**arrow, "shrinkA": 14, "shrinkB": 14}
        )
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("action: next state")
    ax.set_ylabel("state")
    reached = run.metrics.get("reached_goal", True)
    route = " -> ".join(map(str, path)) if path else "none"
    ax.set_title(f"Q matrix, greedy path {route}" + ("" if reached else " (goal not reached)"))
    fig.tight_layout()
    return fig
