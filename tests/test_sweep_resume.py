"""Sweeps that resume (`sweep.resume=true`): a sweep killed with SIGKILL and run again skips
the jobs that finished (their files untouched), continues the unfinished one from its
last.pt to the numbers it would have reached, runs the rest, and summarises all of them;
with the basic, joblib and submitit launchers, and Optuna searches."""

from __future__ import annotations

import csv
import json
import signal
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from dlx.sweep_summary import STATUS_FILE
from tests.conftest import run_dlx
from tests.runs import TIMING, train

# Jobs of two epochs on 512 digits, one learning rate each. DLX_FAULT=epoch_end:<2k+1> kills
# the sweep (one process with the basic launcher) at job k's first epoch end: jobs before k
# are done, job k has its last.pt, the rest never started.
LRS = ("0.001", "0.002", "0.003", "0.004", "0.005", "0.006")
# One thread in every run: a joblib job shares the cores (fewer threads than a basic-launcher
# job gets), and float sums follow the thread count (1e-7 in the test loss), not the resume.
COMMON = (
    "dataset=digits",
    "debug=smoke",
    "trainer.max_epochs=2",
    "trainer.num_threads=1",
    "viz.enabled=false",
)


def sweep_args(jobs: int) -> tuple[str, ...]:
    return ("-m", *COMMON, f"optimizer.lr={','.join(LRS[:jobs])}")


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under folder: (mtime in ns, bytes)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def summary(sweep: Path) -> list[dict[str, str]]:
    with open(sweep / "sweep_summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def killed_sweep(sweep: Path, env: dict[str, str], jobs: int, killed: int) -> None:
    fault = {"DLX_FAULT": f"epoch_end:{2 * killed + 1}"}
    out = run_dlx("train", *sweep_args(jobs), f"hydra.sweep.dir={sweep}", env={**env, **fault})
    assert out.returncode == -signal.SIGKILL, out.stderr
    for job in range(killed):
        assert json.loads((sweep / str(job) / STATUS_FILE).read_text())["status"] == "done"
    assert json.loads((sweep / str(killed) / STATUS_FILE).read_text())["status"] == "running"
    assert (sweep / str(killed) / "checkpoints" / "last.pt").is_file()
    assert not (sweep / str(killed + 1)).exists()


def resume(sweep: Path, env: dict[str, str], jobs: int, killed: int, *launcher: str) -> Any:
    """Run the sweep again with sweep.resume=true; check what it did; its output."""
    before = {job: snapshot(sweep / str(job)) for job in range(killed)}
    args = (*sweep_args(jobs), *launcher, f"hydra.sweep.dir={sweep}", "sweep.resume=true")
    out = run_dlx("train", *args, env=env)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    if "submitit" in " ".join(launcher):  # the jobs' own output is in submitit's logs
        text += "".join(p.read_text() for p in sorted(sweep.glob(".submitit/*/*_log.out")))
    for job in range(killed):  # not run again: every file as it was, to the nanosecond and byte
        assert snapshot(sweep / str(job)) == before[job], f"job {job} was touched"
        assert f"job {job}: done in the earlier sweep; not run again" in text
    last = sweep / str(killed) / "checkpoints" / "last.pt"
    assert f"job {killed}: resuming from {last}" in text
    # the resumed job kept its first record; the resume's own is in .hydra/resumes/1
    hydra = sweep / str(killed) / ".hydra"
    assert (hydra / "resumes" / "1" / "overrides.yaml").is_file()
    assert OmegaConf.load(hydra / "overrides.yaml")[-1] == f"optimizer.lr={LRS[killed]}"
    rows = summary(sweep)
    assert sorted(int(r["job"]) for r in rows) == list(range(jobs))
    assert all(r["status"] == "done" for r in rows), rows
    assert {r["optimizer.lr"] for r in rows} == set(LRS[:jobs])
    assert "sweep.resume" not in rows[0]  # not a parameter of the sweep
    return out


def check_bit_exact(sweep: Path, job: int, tmp_path: Path) -> None:
    """The resumed job reached the numbers an uninterrupted run of it reaches."""
    _, reference = train(tmp_path, *COMMON, f"optimizer.lr={LRS[job]}", name="ref")
    resumed = json.loads((sweep / str(job) / "metrics.json").read_text())
    assert {k: v for k, v in resumed.items() if k not in TIMING} == {
        k: v for k, v in reference.items() if k not in TIMING
    }
    ref_csv = (tmp_path / "ref" / "metrics.csv").read_text().splitlines()
    job_csv = (sweep / str(job) / "metrics.csv").read_text().splitlines()
    # epoch, train/loss, train/acc: bit for bit
    assert [ln.split(",")[:3] for ln in job_csv] == [ln.split(",")[:3] for ln in ref_csv]


@pytest.mark.slow  # the six-job case below runs in the default suite
def test_killed_sweep_resumes_skipping_finished_jobs(cli_env, tmp_path):
    sweep = tmp_path / "sweep"
    killed_sweep(sweep, cli_env, jobs=3, killed=1)
    resume(sweep, cli_env, jobs=3, killed=1)
    check_bit_exact(sweep, 1, tmp_path)


def test_six_job_sweep_killed_after_three_then_resumed_twice(cli_env, tmp_path):
    sweep = tmp_path / "sweep"
    killed_sweep(sweep, cli_env, jobs=6, killed=3)
    resume(sweep, cli_env, jobs=6, killed=3)
    check_bit_exact(sweep, 3, tmp_path)
    # Once more: every job is done, none runs, no job's file changes.
    everything = snapshot(sweep)
    args = (*sweep_args(6), f"hydra.sweep.dir={sweep}", "sweep.resume=true")
    again = run_dlx("train", *args, env=cli_env)
    assert again.returncode == 0, again.stderr
    assert "dlx train: model=" not in again.stdout  # no job trained
    after = snapshot(sweep)
    jobs = [k for k in everything if k.split("/")[0].isdigit()]
    assert {k: after[k] for k in jobs} == {k: everything[k] for k in jobs}


def test_what_a_resume_refuses(cli_env, tmp_path):
    sweep = tmp_path / "sweep"
    job = sweep / "0"
    job.mkdir(parents=True)
    status = {"job": 0, "status": "done", "overrides": ["optimizer.lr=0.5"], "value": 0.9}
    (job / STATUS_FILE).write_text(json.dumps(status))
    before = snapshot(sweep)
    args = sweep_args(2)
    cases = [
        # another sweep's jobs: refused before any job runs, nothing touched
        ([*args, f"hydra.sweep.dir={sweep}", "sweep.resume=true"],
         f"sweep.resume=true: job 0 in {sweep} is a job of another sweep (optimizer.lr=0.5"),
        # a fresh sweep into a dir that holds one
        ([*args, f"hydra.sweep.dir={sweep}"],
         f"hydra.sweep.dir={sweep} holds a sweep already; continue it with sweep.resume=true"),
        # nothing named to resume
        ([*args, "sweep.resume=true"], "sweep.resume=true continues a sweep: name its dir"),
        # a single run
        (["debug=smoke", "sweep.resume=true", f"hydra.run.dir={tmp_path / 'run'}"],
         "sweep.resume=true continues a multirun"),
    ]  # fmt: skip
    for args, line in cases:
        out = run_dlx("train", *args, env=cli_env, cwd=tmp_path)
        lines = [ln for ln in out.stderr.splitlines() if not ln.startswith("warning:")]
        assert out.returncode == 2, out.stderr
        assert len(lines) == 1 and lines[0].startswith(f"error: {line}"), out.stderr
        assert "Traceback" not in out.stdout + out.stderr
    assert snapshot(sweep) == before
    assert not (tmp_path / "run").exists() and not (tmp_path / "outputs").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher",
    [
        ("hydra/launcher=joblib", "hydra.launcher.n_jobs=2"),
        ("hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"),
    ],
    ids=["joblib", "submitit_local"],
)
def test_resume_with_other_launchers(launcher, cli_env, tmp_path):
    # The jobs run in joblib's worker processes or submitit's job processes: each looks
    # itself up in the sweep dir there.
    sweep = tmp_path / "sweep"
    killed_sweep(sweep, cli_env, jobs=4, killed=2)
    resume(sweep, cli_env, 4, 2, *launcher)
    check_bit_exact(sweep, 2, tmp_path)


@pytest.mark.slow
def test_optuna_search_resumes_from_its_recorded_trials(cli_env, tmp_path):
    sweep = tmp_path / "sweep"
    search = ("hparams_search=digits_optuna", "debug=smoke", f"hydra.sweep.dir={sweep}")
    # one epoch a trial: killed at trial 2's end of epoch (its last.pt written, not done)
    killed = run_dlx(
        "train", *search, "hydra.sweeper.n_trials=4", env={**cli_env, "DLX_FAULT": "epoch_end:3"}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "warning: no validation split" not in killed.stderr  # the search holds out 20%
    first = {n: json.loads((sweep / str(n) / STATUS_FILE).read_text()) for n in range(3)}
    assert [first[n]["status"] for n in range(3)] == ["done", "done", "running"]
    before = {n: snapshot(sweep / str(n)) for n in range(2)}
    out = run_dlx("train", *search, "hydra.sweeper.n_trials=4", "sweep.resume=true", env=cli_env)
    assert out.returncode == 0, out.stderr
    assert "resuming the search: 3 recorded trials first" in out.stdout
    for n in range(2):
        assert snapshot(sweep / str(n)) == before[n]
    assert f"job 2: resuming from {sweep / '2' / 'checkpoints' / 'last.pt'}" in out.stdout
    rows = summary(sweep)
    assert sorted(int(r["job"]) for r in rows) == [0, 1, 2, 3]
    assert all(r["status"] == "done" for r in rows)
    # trial n is job n again, with the values Optuna sampled for it the first time
    for n in range(3):
        status = json.loads((sweep / str(n) / STATUS_FILE).read_text())
        kept = [o for o in status["overrides"] if not o.startswith("sweep.resume=")]
        assert kept == first[n]["overrides"]
    # the study learnt the finished trials' values: its best is the summary's best
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert best.best_value == pytest.approx(max(float(r["value"]) for r in rows))
