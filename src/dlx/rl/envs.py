"""Environments as reward matrices: `R[s, a]` is the reward for moving from state s to
state a; a negative entry means there is no link (the book writes -1).

`RewardMaze` takes R as given (the book's 6-state maze is `configs/env/maze.yaml`);
`GridMaze` builds R from a grid of cells with walls, moving up/down/left/right.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dlx.core.errors import ConfigError


class RewardMaze:
    """A reward matrix with a goal state, a discount and a start state for the greedy path."""

    def __init__(
        self,
        rewards: Sequence[Sequence[float]] | np.ndarray,
        goal: int,
        gamma: float = 0.8,
        start: int = 0,
    ) -> None:
        try:
            r = np.asarray(rewards, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError("env.rewards must be a square matrix of numbers") from None
        if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] < 2:
            raise ConfigError(
                f"env.rewards must be a square matrix of at least 2 states, not shape {r.shape}"
            )
        n = r.shape[0]
        for name, value in (("goal", goal), ("start", start)):
            if not isinstance(value, (int, np.integer)) or not 0 <= value < n:
                raise ConfigError(f"env.{name}={value} is not a state of this {n}-state maze")
        if not 0.0 <= gamma < 1.0:
            raise ConfigError(f"env.gamma={gamma} must be in [0, 1)")
        if not (r[:, goal] >= 0).any():
            raise ConfigError(f"env.rewards: no state links to the goal {goal}")
        self.rewards = r  # [states, states]
        self.goal = int(goal)
        self.gamma = float(gamma)
        self.start = int(start)

    @property
    def num_states(self) -> int:
        return self.rewards.shape[0]

    def actions(self, state: int) -> np.ndarray:
        """The states reachable from `state` in one move."""
        return np.flatnonzero(self.rewards[state] >= 0)

    def describe(self) -> str:
        return f"{self.num_states}-state maze, goal {self.goal}"


class GridMaze(RewardMaze):
    """A rows x cols grid; state = row * cols + col. A move to a free neighbouring cell
    earns 0, a move into the goal earns `reward`; the goal also links to itself with
    `reward`, as the book's maze does (R[5, 5] = 100). Walls are cells with no links."""

    def __init__(
        self,
        rows: int,
        cols: int,
        goal: Sequence[int],
        start: Sequence[int] = (0, 0),
        walls: Sequence[Sequence[int]] = (),
        gamma: float = 0.8,
        reward: float = 100.0,
    ) -> None:
        if not (isinstance(rows, int) and isinstance(cols, int)) or rows < 1 or cols < 1:
            raise ConfigError(f"env.rows={rows} and env.cols={cols} must be positive integers")
        if rows * cols < 2:
            raise ConfigError("env: a grid maze needs at least 2 cells")
        if reward <= 0:
            raise ConfigError(f"env.reward={reward} must be > 0")

        def cell(name: str, value: Any) -> tuple[int, int]:
            if (
                not isinstance(value, Sequence)
                or len(value) != 2
                or not all(isinstance(v, int) for v in value)
                or not (0 <= value[0] < rows and 0 <= value[1] < cols)
            ):
                raise ConfigError(
                    f"env.{name}={list(value) if isinstance(value, Sequence) else value} "
                    f"is not a [row, col] cell of the {rows}x{cols} grid"
                )
            return int(value[0]), int(value[1])

        blocked = {cell("walls", w) for w in walls}
        g, s = cell("goal", goal), cell("start", start)
        for name, c in (("goal", g), ("start", s)):
            if c in blocked:
                raise ConfigError(f"env.{name}={list(c)} is a wall")
        r = np.full((rows * cols, rows * cols), -1.0)
        for row in range(rows):
            for col in range(cols):
                if (row, col) in blocked:
                    continue
                for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                    nr, nc = row + dr, col + dc
                    if 0 <= nr < rows and 0 <= nc < cols and (nr, nc) not in blocked:
                        r[row * cols + col, nr * cols + nc] = reward if (nr, nc) == g else 0.0
        goal_state = g[0] * cols + g[1]
        r[goal_state, goal_state] = reward
        super().__init__(r, goal=goal_state, gamma=gamma, start=s[0] * cols + s[1])
        self.rows, self.cols = rows, cols

    def describe(self) -> str:
        rows, cols = self.rows, self.cols
        return f"{rows}x{cols} grid maze, goal state {self.goal}"
