"""Run dirs never collide: two runs started in the same second get two dirs; a run pointed
at a dir that holds another run is refused, unless it continues it (trainer.resume)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dlx.core.errors import ConfigError
from dlx.rundirs import claim_run_dir, claim_sweep_dir
from tests.conftest import DLX, run_dlx


def hydra_config(run_dir: Path, named: bool = False, sweep: bool = False) -> object:
    """The hydra node of a composed config, as RunChecks and SweepSummary see it."""
    node = "sweep" if sweep else "run"
    overrides = [f"hydra.{node}.dir={run_dir}"] if named else []
    return OmegaConf.create(
        {
            "hydra": {
                "run": {"dir": str(run_dir)},
                "sweep": {"dir": str(run_dir)},
                "output_subdir": ".hydra",
                "job": {"name": "train"},
                "overrides": {"hydra": overrides, "task": []},
            }
        }
    )


def test_two_runs_named_in_the_same_second_get_two_dirs(tmp_path):
    folder = tmp_path / "outputs" / "train" / "2024-05-01" / "10-00-00"
    first, second = hydra_config(folder), hydra_config(folder)
    assert claim_run_dir(first, resume=False) == (folder, True)
    assert claim_run_dir(second, resume=False) == (folder.with_name("10-00-00_1"), True)
    assert second.hydra.run.dir == str(folder.with_name("10-00-00_1"))  # where Hydra writes
    assert (folder / ".hydra").is_dir() and (folder.with_name("10-00-00_1") / ".hydra").is_dir()
    # a folder that holds a run made without .hydra/ is passed over too
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.json").write_text("{}")
    assert claim_run_dir(hydra_config(tmp_path / "old"), resume=False)[0].name == "old_1"


def test_a_named_run_dir_holding_a_run_is_refused_unless_resumed(tmp_path):
    used = tmp_path / "run"
    (used / "checkpoints").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"hydra.run.dir=.* holds another run \(its checkp"):
        claim_run_dir(hydra_config(used, named=True), resume=False)
    config = hydra_config(used, named=True)
    assert claim_run_dir(config, resume=True) == (used, False)  # trainer.resume: that dir
    assert config.hydra.run.dir == str(used)
    fresh = tmp_path / "fresh"
    assert claim_run_dir(hydra_config(fresh, named=True), resume=False) == (fresh, True)
    with pytest.raises(ConfigError, match="holds another run"):  # claimed a moment ago
        claim_run_dir(hydra_config(fresh, named=True), resume=False)


def test_sweep_dirs(tmp_path):
    folder = tmp_path / "multirun" / "10-00-00"
    assert claim_sweep_dir(hydra_config(folder, sweep=True), resume=False) == folder
    second = hydra_config(folder, sweep=True)
    assert claim_sweep_dir(second, resume=False) == folder.with_name("10-00-00_1")
    # each job composes its config from the overrides: the dir is among them
    assert list(second.hydra.overrides.hydra) == [f"hydra.sweep.dir={folder}_1"]
    (folder / "0").mkdir()
    (folder / "0" / "job_status.json").write_text(json.dumps({"job": 0}))
    with pytest.raises(ConfigError, match="holds a sweep already; continue it with sweep"):
        claim_sweep_dir(hydra_config(folder, named=True, sweep=True), resume=False)
    resumed = hydra_config(folder, named=True, sweep=True)
    assert claim_sweep_dir(resumed, resume=True) == folder
    with pytest.raises(ConfigError, match=r"name its dir with hydra\.sweep\.dir"):
        claim_sweep_dir(hydra_config(folder, sweep=True), resume=True)


def test_two_trains_started_at_once_from_one_folder_end_in_two_run_dirs(cli_env, tmp_path):
    # Hydra names run dirs by the second: these two (started together, with the same
    # config) used to share one, each overwriting the other's files.
    env = {**cli_env, "DLX_OUTPUT_DIR": "outputs"}
    cmd = [DLX, "train", "debug=smoke", "viz.enabled=false"]
    procs = [
        subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    runs = sorted(p.parent for p in (tmp_path / "outputs" / "train").glob("*/*/.hydra"))
    assert len(runs) == 2, runs
    for run in runs:  # each complete, each with its own log of one run
        assert json.loads((run / "metrics.json").read_text())["epochs"] == 1
        assert (run / "checkpoints" / "last.pt").is_file()
        assert (run / "train.log").read_text().count("done: ") == 1
    done = sorted(line.split("->")[1].strip() for out in outs for line in out.splitlines()
                  if line.startswith("done:"))  # fmt: skip
    assert done == [str(r) for r in runs]  # each said where it went: its own dir


def test_train_into_a_named_dir_holding_another_run(cli_env, tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (run / "metrics.json").write_text('{"test/acc": 0.5}')
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    out = run_dlx("train", "debug=smoke", f"hydra.run.dir={run}", env=cli_env)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        f"error: hydra.run.dir={run} holds another run (its .hydra); give a new dir, or "
        "continue that run with trainer.resume=auto"
    ]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
