"""Tabular Q-learning: the book's maze path, reproducibility, the grid maze, bad configs,
and the book's 6-16 through the CLI."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from dlx.compose import compose
from dlx.core.errors import ConfigError
from dlx.core.targets import instantiate
from dlx.rl.envs import GridMaze, RewardMaze
from dlx.rl.qlearning import QLearning, greedy_path, learn
from tests.conftest import run_dlx


@pytest.fixture(scope="module")
def maze() -> RewardMaze:
    """The book's maze, built from the shipped config the way `dlx train` builds it."""
    cfg = compose("train", ["experiment=book/6_16_qlearning_maze"])
    assert cfg.dataset is None  # the experiment drops the data set
    return instantiate(cfg.env, "env")


def test_book_maze_config(maze):
    assert maze.num_states == 6 and maze.goal == 5 and maze.start == 2 and maze.gamma == 0.8
    assert maze.actions(3).tolist() == [1, 2, 4] and maze.rewards[1, 5] == 100


def test_book_seed_finds_the_published_path(maze):
    metrics = QLearning(updates=100).solve(maze, seed=2017)
    assert metrics["greedy_path"] == [2, 3, 1, 5] and metrics["reached_goal"]
    q = np.array(metrics["q_matrix"])
    assert q.shape == (6, 6) and q.max() == 100.0 and metrics["updates"] == 100


def test_same_seed_same_q_other_seed_other_q(maze):
    a = QLearning().solve(maze, seed=7)
    assert QLearning().solve(maze, seed=7) == a
    assert QLearning().solve(maze, seed=8)["q_matrix"] != a["q_matrix"]


def test_converged_q_is_the_known_fixed_point(maze):
    q = learn(maze, 5000, np.random.default_rng(0))
    # Q[5, 5] = 100 + 0.8 Q[5, 5] -> 500; one step back 0.8 x 500 = 400, then 320, 256.
    assert q[5, 5] == pytest.approx(500, rel=1e-3) and q[1, 5] == pytest.approx(500, rel=1e-3)
    assert q[3, 1] == pytest.approx(400, rel=1e-3) and q[2, 3] == pytest.approx(320, rel=1e-3)
    assert q[3, 2] == pytest.approx(256, rel=1e-3)


def test_tie_break_first_is_lowest_index_random_takes_both_routes(maze):
    q = np.zeros((6, 6))
    q[2, 3], q[3, 1], q[3, 4], q[1, 5], q[4, 5] = 64, 80, 80, 100, 100  # 3->1 ties 3->4
    assert greedy_path(q, maze, 2, "first") == ([2, 3, 1, 5], True)
    rng = np.random.default_rng(0)
    routes = {tuple(greedy_path(q, maze, 2, "random", rng)[0]) for _ in range(20)}
    assert routes == {(2, 3, 1, 5), (2, 3, 4, 5)}


def test_untrained_q_stops_instead_of_looping(maze):
    path, reached = greedy_path(np.zeros((6, 6)), maze, 2)
    assert path == [2, 3, 1] and not reached  # from 1 the best move returns to 3


def test_grid_maze_reward_matrix_and_path():
    env = GridMaze(rows=3, cols=4, goal=[2, 3], start=[0, 0], walls=[[1, 1], [1, 2]])
    r = env.rewards
    assert r.shape == (12, 12) and env.goal == 11 and env.start == 0
    assert (r[5] < 0).all() and (r[:, 5] < 0).all()  # cell (1, 1) is a wall
    assert r[7, 11] == 100 and r[10, 11] == 100 and r[11, 11] == 100 and r[0, 1] == 0
    assert r[0, 2] < 0  # no jumps
    metrics = QLearning(updates=2000).solve(env, seed=0)
    path = metrics["greedy_path"]
    assert metrics["reached_goal"] and path[0] == 0 and path[-1] == 11
    assert len(path) == 6  # a shortest route: 5 moves around the wall
    assert all(r[a, b] >= 0 for a, b in itertools.pairwise(path))


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: RewardMaze([[0, 1, 2]], goal=0), "square matrix"),
        (lambda: RewardMaze([[0, 0], [0, 0]], goal=2), "env.goal=2 is not a state"),
        (lambda: RewardMaze([[0, 0], [0, 0]], goal=1, start=-1), "env.start=-1"),
        (lambda: RewardMaze([[0, 0], [0, 0]], goal=1, gamma=1.0), "env.gamma=1.0"),
        (lambda: RewardMaze([[0, -1], [0, -1]], goal=1), "no state links to the goal 1"),
        (lambda: GridMaze(2, 2, goal=[1, 1], walls=[[1, 1]]), "env.goal=[1, 1] is a wall"),
        (lambda: GridMaze(2, 2, goal=[2, 0]), "env.goal=[2, 0] is not a [row, col] cell"),
        (lambda: GridMaze(0, 2, goal=[0, 0]), "env.rows=0"),
        (lambda: QLearning(updates=0), "model.updates=0"),
        (lambda: QLearning(tie_break="last"), "model.tie_break='last'"),
        (lambda: QLearning().run(cfg=OmegaConf.create({"seed": 1})), "needs an environment"),
    ],
)
def test_bad_config_is_one_clear_error(build, words):
    with pytest.raises(ConfigError) as err:
        build()
    assert words in str(err.value) and "\n" not in str(err.value)


def test_book_6_16_through_the_cli(cli_env, tmp_path):
    run_dir = tmp_path / "run"
    out = run_dlx("train", "experiment=book/6_16_qlearning_maze", f"hydra.run.dir={run_dir}",
                  env=cli_env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    paths = {k: v for k, v in metrics.items() if k.endswith("path")}
    assert paths == {"greedy_path": [2, 3, 1, 5]}
    assert np.array(metrics["q_matrix"]).max() == 100.0 and metrics["updates"] == 100
    assert np.load(run_dir / "model.npz")["q"].shape == (6, 6)


def test_bad_env_override_exits_2_with_one_line(cli_env, tmp_path):
    out = run_dlx("train", "model=qlearning", "env=maze", "env.goal=9",
                  f"hydra.run.dir={tmp_path / 'run'}", env=cli_env)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip() == "error: env.goal=9 is not a state of this 6-state maze"
