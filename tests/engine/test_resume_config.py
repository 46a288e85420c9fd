"""Resuming under another config: refused in one line naming what differs, before anything
is written, when it changes what the run computes; allowed when it does not (more epochs,
another cache folder, logging)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dlx.engine.resume import differences
from tests.conftest import run_dlx

# One epoch of five batches, with a cosine schedule: its T_max follows trainer.max_epochs.
BASE = ["debug=smoke", "viz.enabled=false", "logger=none", "scheduler=cosine"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("resume-config")
    env = {**os.environ, "DLX_CACHE_DIR": str(root / "cache"), "DLX_OUTPUT_DIR": str(root)}
    env.pop("HYDRA_FULL_ERROR", None)
    out = run_dlx("train", *BASE, f"hydra.run.dir={root / 'run'}", env=env)
    assert out.returncode == 0, out.stderr
    return root / "run", env


def digest(run_dir: Path) -> dict[str, str]:
    """What a resume may not touch before it is accepted: checkpoints and metrics."""
    files = [*run_dir.glob("**/checkpoints/*"), *run_dir.glob("**/metrics.*")]
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def refused(run_dir: Path, env: dict[str, str], *args: str) -> str:
    before = digest(run_dir)
    out = run_dlx(
        "train",
        *BASE,
        *args,
        "trainer.resume=auto",
        f"hydra.run.dir={run_dir}",
        env=env,
    )
    lines = out.stderr.splitlines()
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and lines[0].startswith("error: cannot resume "), out.stderr
    assert "start a new run (a new hydra.run.dir)" in lines[0]
    assert "resumed from" not in out.stdout and "epoch 2/" not in out.stdout
    assert digest(run_dir) == before  # nothing written
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]
    return lines[0]


def test_another_optimizer_is_refused_naming_its_keys(trained, tmp_path):
    src, env = trained
    run_dir = shutil.copytree(src, tmp_path / "run")
    line = refused(run_dir, env, "optimizer=sgd", "trainer.max_epochs=2")
    assert f"cannot resume {run_dir / 'checkpoints' / 'last.pt'}" in line
    assert "optimizer._target_ (torch.optim.Adam -> torch.optim.SGD)" in line
    assert "optimizer.lr (0.001 -> 0.01)" in line and " more;" in line  # only the first 6
    assert "KeyError" not in line


def test_another_model_shape_is_refused_naming_it(trained, tmp_path):
    src, env = trained
    run_dir = shutil.copytree(src, tmp_path / "run")
    line = refused(run_dir, env, "model.hidden=[16]", "trainer.max_epochs=2")
    assert "the config differs in model.hidden ([784] -> [16]);" in line


def test_a_longer_epoch_is_refused(trained, tmp_path):
    src, env = trained
    run_dir = shutil.copytree(src, tmp_path / "run")
    line = refused(run_dir, env, "trainer.limit_train_batches=6", "seed=1")
    assert "trainer.limit_train_batches (5 -> 6)" in line and "seed (2017 -> 1)" in line


def test_more_epochs_and_other_places_still_resume(trained, tmp_path):
    src, env = trained
    run_dir = shutil.copytree(src, tmp_path / "run")
    # max_epochs (and the T_max that follows it), the cache folder (dataset.cache_dir
    # follows it), logging and checkpoint frequency do not change what was computed so far.
    out = run_dlx(
        "train",
        *BASE,
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=1",
        "trainer.checkpoint_every_n_steps=2",
        "logger=csv",
        "trainer.resume=auto",
        f"hydra.run.dir={run_dir}",
        env={**env, "DLX_CACHE_DIR": str(tmp_path / "other-cache")},
    )
    assert out.returncode == 0, out.stderr
    assert "resumed from" in out.stdout and "epoch 2/2" in out.stdout


def test_a_staged_run_checks_every_stage_before_the_first_runs(trained, tmp_path):
    _, env = trained
    run_dir = tmp_path / "run"
    stages = "+stages=[{name: a},{name: b, overrides: {model: {init_from: previous%s}}}]"
    first = run_dlx("train", *BASE, stages % "", f"hydra.run.dir={run_dir}", env=env)
    assert first.returncode == 0, first.stderr
    line = refused(run_dir, env, stages % ", dropout: 0.5", "trainer.max_epochs=2")
    assert f"cannot resume {run_dir / '2_b' / 'checkpoints' / 'last.pt'}" in line
    assert "model.dropout (0.0 -> 0.5)" in line


def test_differences_follow_interpolations_and_skip_free_keys():
    stored = {
        "seed": 1,
        "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.001},
        "model": {"hidden": [64], "init_from": "/a/last.pt"},
        "dataset": {"cache_dir": "/old/cache", "limit": None},
        "scheduler": {"lr_scheduler": {"T_max": 3}},
        "trainer": {"max_epochs": 3, "batch_size": 32},
    }
    cfg = OmegaConf.create(
        {
            "seed": 1,
            "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.001},
            "model": {"hidden": [64], "init_from": "/b/last.pt"},  # free: the weights load
            "dataset": {"cache_dir": "/new/cache", "limit": None},  # free: a place
            "scheduler": {"lr_scheduler": {"T_max": "${trainer.max_epochs}"}},  # follows
            "trainer": {"max_epochs": 9, "batch_size": 32},  # not compared
        }
    )
    assert differences(stored, cfg) == []
    cfg.trainer.batch_size = 64
    cfg.model.dropout = 0.1
    assert differences(stored, cfg) == [
        "model.dropout (absent -> 0.1)",
        "trainer.batch_size (32 -> 64)",
    ]
