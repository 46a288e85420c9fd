"""Tabular Q-learning as in the book's listing 6-16, as a dlx runner (`model=qlearning`).

The book's algorithm, kept as is: for `updates` steps pick a random state, a random action
available there, and set `Q[s, a] = R[s, a] + gamma * max_a' Q[a, a']` (a deterministic
maze: the action *is* the next state, so the learning rate is 1). Then walk greedily on Q
from the start state to the goal.

Ties: in the update only the max *value* matters, so ties change nothing. On the greedy
path they decide the route: in the book's maze 3 -> 1 and 3 -> 4 lead to the goal in the
same number of steps and reach the same value once Q has converged. `tie_break=first` takes
the lowest state index (deterministic; it gives the book's printed [2, 3, 1, 5] on a tie);
`tie_break=random` picks among the tied states with the seeded generator, as the book's
`np.random.choice` did.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from dlx.core.errors import ConfigError
from dlx.rl.envs import RewardMaze

log = logging.getLogger("dlx")

TIE_BREAKS = ("first", "random")


def learn(env: RewardMaze, updates: int, rng: np.random.Generator) -> np.ndarray:
    """Q [states, states] after `updates` of the book's random-state, random-action rule."""
    r = env.rewards
    q = np.zeros_like(r)
    actions = [env.actions(s) for s in range(env.num_states)]
    # The book draws from every state; walls of a grid maze have no move, so draw from
    # the states that have one (all of them in the book's maze: the same draws).
    movable = np.array([s for s, a in enumerate(actions) if len(a)])
    for _ in range(updates):
        s = int(movable[rng.integers(len(movable))])
        a = int(actions[s][rng.integers(len(actions[s]))])
        future = q[a, actions[a]].max() if len(actions[a]) else 0.0
        q[s, a] = r[s, a] + env.gamma * future
    return q


def greedy_path(
    q: np.ndarray,
    env: RewardMaze,
    start: int,
    tie_break: str = "first",
    rng: np.random.Generator | None = None,
) -> tuple[list[int], bool]:
    """Follow the best move on Q from `start`; returns (states visited, goal reached).

    Stops at the goal, or when a state would repeat (Q not yet trained that far).
    """
    path, state = [start], start
    while state != env.goal:
        moves = env.actions(state)
        if not len(moves):
            return path, False
        values = q[state, moves]
        best = moves[values == values.max()]
        if tie_break == "random" and len(best) > 1:
            assert rng is not None
            state = int(best[rng.integers(len(best))])
        else:
            state = int(best[0])
        if state in path:
            return path, False
        path.append(state)
    return path, True


class QLearning:
    """Runner for `model=qlearning env=maze|grid`: learns Q and reports the greedy path."""

    def __init__(self, spec: Any = None, updates: int = 100, tie_break: str = "first") -> None:
        if not isinstance(updates, int) or updates < 1:
            raise ConfigError(f"model.updates={updates} must be a positive integer")
        if tie_break not in TIE_BREAKS:
            raise ConfigError(
                f"model.tie_break={tie_break!r} must be one of {', '.join(TIE_BREAKS)}"
            )
        self.updates = updates
        self.tie_break = tie_break

    def run(self, data: Any = None, cfg: Any = None, run_dir: Path | None = None) -> dict[str, Any]:
        from dlx.core.targets import instantiate

        env_cfg = None if cfg is None else cfg.get("env")
        if env_cfg is None:
            raise ConfigError("model=qlearning needs an environment: add env=maze or env=grid")
        env = instantiate(env_cfg, "env")
        if not isinstance(env, RewardMaze):
            raise ConfigError(f"env._target_ built a {type(env).__name__}, not a reward maze")
        return self.solve(env, seed=int(cfg.seed), run_dir=run_dir)

    def solve(self, env: RewardMaze, seed: int, run_dir: Path | None = None) -> dict[str, Any]:
        """Learn on `env` with a generator seeded by `seed`; the metrics for metrics.json."""
        rng = np.random.default_rng(seed)
        q = learn(env, self.updates, rng)
        path, reached = greedy_path(q, env, env.start, self.tie_break, rng)
        top = float(q.max())
        normalised = q / top * 100.0 if top > 0 else q
        if run_dir is not None:
            from dlx.core.io import save_npz

            save_npz({"q": q, "rewards": env.rewards}, Path(run_dir) / "model.npz")
        log.info(
            "dlx train: Q-learning on a %s, %d updates: greedy path %s%s",
            env.describe(),
            self.updates,
            path,
            "" if reached else " (goal not reached: more updates?)",
        )
        return {
            "q_matrix": np.round(normalised, 4).tolist(),
            "q_max": top,
            "greedy_path": path,
            "reached_goal": reached,
            "start": env.start,
            "goal": env.goal,
            "updates": self.updates,
        }
