"""Sweeps through the real `dlx` CLI and real Hydra launchers and sweepers (basic, joblib,
submitit_local, Optuna): every multirun ends with a summary of all its jobs, best first, and
a failing job is recorded while the others run."""

from __future__ import annotations

import csv
import json
import math
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dlx.core.io import write_json
from dlx.engine.runtime import cores
from dlx.sweep_summary import STATUS_FILE, sweep_rows
from tests.conftest import run_dlx
from tests.runs import png_size

SMOKE = ("dataset=digits", "debug=smoke")
# What a sweep without a validation split says first (on stderr), once.
NO_VAL = (
    "warning: no validation split (dataset.val_split=0.0): the jobs are ranked on a training "
    "or test metric, not on held-out data; hold out one with dataset.val_split=0.2"
)


def read_csv(sweep: Path) -> list[dict[str, str]]:
    with open(sweep / "sweep_summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def check_summary(sweep: Path, stdout: str, jobs: int) -> list[dict[str, str]]:
    """The summary lists every job once, in rank order, with the value its run recorded."""
    rows = read_csv(sweep)
    assert sorted(int(r["job"]) for r in rows) == list(range(jobs))
    done = [r for r in rows if r["status"] == "done"]
    for r in done:
        metrics = json.loads((Path(r["run_dir"]) / "metrics.json").read_text())
        assert r["monitor"] == metrics["monitor"]
        assert float(r["value"]) == pytest.approx(metrics[metrics["monitor"]])
    values = [float(r["value"]) for r in done]
    higher = done and done[0]["monitor"].endswith("acc")
    assert values == sorted(values, reverse=bool(higher))
    assert [r["rank"] for r in done] == [str(i) for i in range(1, len(done) + 1)]
    table = (sweep / "sweep_summary.txt").read_text()
    assert f"sweep: {jobs} jobs" in table and f"sweep: {jobs} jobs" in stdout
    for r in rows:  # each job's run dir (relative to the sweep dir) is in the table
        assert f" {Path(r['run_dir']).relative_to(sweep)} " in table
    return rows


def test_basic_multirun_2x2_ranks_all_jobs(cli_env, tmp_path):
    sweep = tmp_path / "sweep"
    out = run_dlx(
        "train",
        "-m",
        "optimizer.lr=0.001,0.05",
        "model.hidden=[8],[32]",
        *SMOKE,
        f"hydra.sweep.dir={sweep}",
        env=cli_env,
    )
    assert out.returncode == 0, out.stderr
    rows = check_summary(sweep, out.stdout, 4)
    assert {(r["optimizer.lr"], r["model.hidden"]) for r in rows} == {
        ("0.001", "[8]"),
        ("0.001", "[32]"),
        ("0.05", "[8]"),
        ("0.05", "[32]"),
    }
    assert all(r["status"] == "done" and r["monitor"] == "train/acc" for r in rows)
    # The same rows for other code (figures of a metric against a parameter), typed.
    api = sweep_rows(sweep)
    assert [r["job"] for r in api] == [int(r["job"]) for r in rows]
    assert {r["overrides"]["optimizer.lr"] for r in api} == {0.001, 0.05}
    assert {tuple(r["overrides"]["model.hidden"]) for r in api} == {(8,), (32,)}
    assert all(isinstance(r["metrics"]["test/acc"], float) for r in api)
    # a job's config says what the summary says it ran
    for r in api:
        cfg = OmegaConf.load(Path(r["run_dir"]) / ".hydra" / "config.yaml")
        assert cfg.optimizer.lr == r["overrides"]["optimizer.lr"]
    # the metric against each swept parameter: two panels of 5x4 inches at 100 dpi
    assert png_size(sweep / "plots" / "sweep.png") == (1000, 400)


def test_failing_job_is_recorded_and_the_sweep_goes_on(cli_env, tmp_path):
    sweep = tmp_path / "sweep"
    out = run_dlx(
        "train", "-m", "optimizer.lr=0.01,-1,0.001", *SMOKE, f"hydra.sweep.dir={sweep}", env=cli_env
    )
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert "error: optimizer.lr=-1.0 must be > 0 (job 1 failed; the sweep goes on)" in out.stdout
    # one line at the end: how many failed, the first error, where the summary is
    assert out.stderr.strip().splitlines() == [
        NO_VAL,
        "error: 1 of 3 jobs failed or did not finish (job 1: optimizer.lr=-1.0 must be > 0); "
        f"see {sweep / 'sweep_summary.csv'}",
    ]
    rows = check_summary(sweep, out.stdout, 3)
    assert [(r["job"], r["status"]) for r in rows][-1] == ("1", "failed")
    assert rows[-1]["error"] == "optimizer.lr=-1.0 must be > 0" and rows[-1]["rank"] == ""
    assert {r["job"] for r in rows if r["status"] == "done"} == {"0", "2"}  # job 2 still ran
    assert not (sweep / "1" / "metrics.json").exists()
    assert "failed" in (sweep / "sweep_summary.txt").read_text()


@pytest.mark.parametrize(
    ("override", "module", "library", "extra"),
    [
        ("hydra/launcher=joblib", "hydra_plugins.hydra_joblib_launcher", "joblib", "sweep"),
        ("hydra/launcher=submitit_local", "submitit", "submitit", "slurm"),
        ("hydra/launcher=slurm", "hydra_plugins.hydra_submitit_launcher", "submitit", "slurm"),
        ("hparams_search=digits_optuna", "hydra_plugins.hydra_optuna_sweeper", "optuna", "sweep"),
        ("hydra/sweeper=optuna", "optuna", "optuna", "sweep"),
    ],
)
def test_missing_plugin_names_the_extra(override, module, library, extra, cli_env, tmp_path):
    # sys.modules[name] = None: Python then treats the package as not installed.
    code = (
        f"import sys; sys.modules[{module!r}] = None; from dlx.cli import main; "
        f"main(['train', '-m', {override!r}, 'debug=smoke'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=cli_env, cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        f"error: {override} needs Hydra's {library} plugin, which is not installed here; "
        f"pip install 'dlx[{extra}]'"
    ]
    assert not (tmp_path / "outputs").exists()


def test_slurm_launcher_config(cli_env):
    out = run_dlx(
        "train",
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.timeout_min=240",
        "--cfg",
        "hydra",
        "-p",
        "hydra.launcher",
        env=cli_env,
    )
    assert out.returncode == 0, out.stderr
    launcher = OmegaConf.create(out.stdout)
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.timeout_min == 240
    assert launcher.gpus_per_node == 1 and launcher.mem_gb == 32
    assert launcher.array_parallelism == 16


def test_optuna_direction_against_the_metric_is_refused_before_any_trial(cli_env, tmp_path):
    sweep = tmp_path / "sweep"
    out = run_dlx(
        "train",
        "hparams_search=digits_optuna",
        "hydra.sweeper.direction=minimize",
        *SMOKE,
        f"hydra.sweep.dir={sweep}",
        env=cli_env,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: hydra.sweeper.direction=minimize but val/acc is better larger; "
        "set hydra.sweeper.direction=maximize (or trainer.monitor and trainer.monitor_mode)"
    ]
    assert not sweep.exists()


def test_optuna_database_storage_with_sqlalchemy2_is_refused(cli_env, tmp_path):
    from importlib.metadata import version

    if int(version("sqlalchemy").split(".")[0]) < 2:
        pytest.skip("SQLAlchemy < 2: optuna 2.x can use a database here")
    out = run_dlx(
        "train",
        "hparams_search=digits_optuna",
        f"hydra.sweeper.storage=sqlite:///{tmp_path}/study.db",
        *SMOKE,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        env=cli_env,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'sqlalchemy<2'" in lines[0], out.stderr


def fake_job(sweep: Path, job: int, status: str, **fields) -> None:
    run_dir = sweep / str(job)
    metrics = fields.pop("metrics", None)
    if metrics is not None:
        write_json(metrics, run_dir / "metrics.json")
    write_json(
        {"job": job, "status": status, "run_dir": str(run_dir), **fields}, run_dir / STATUS_FILE
    )


def test_sweep_rows_rank_by_the_metric_direction(tmp_path):
    """Losses rank low-first; failed then unfinished jobs come last; another sweep's files
    in the same dir are left out."""
    sweep = tmp_path / "sweep"
    for job, loss in ((0, 0.5), (1, 0.2), (3, 0.9)):
        fake_job(
            sweep,
            job,
            "done",
            sweep_id="A",
            overrides=[f"optimizer.lr={job / 10}", "model.hidden=[4,2]"],
            monitor="val/loss",
            mode="min",
            value=loss,
            metrics={"val/loss": loss, "test/acc": 1 - loss, "epoch_time_s": [1.0], "monitor": "x"},
        )
    fake_job(sweep, 2, "failed", sweep_id="A", overrides=["optimizer.lr=-1"], error="bad lr")
    fake_job(sweep, 4, "running", sweep_id="A", overrides=[])
    fake_job(sweep, 5, "done", sweep_id="OLD", overrides=[], monitor="val/loss", value=0.0)
    rows = sweep_rows(sweep, "A")
    assert [(r["job"], r["rank"], r["status"]) for r in rows] == [
        (1, 1, "done"),
        (0, 2, "done"),
        (3, 3, "done"),
        (2, None, "failed"),
        (4, None, "unfinished"),
    ]
    assert rows[0]["overrides"] == {"optimizer.lr": 0.1, "model.hidden": [4, 2]}
    assert rows[0]["metrics"] == {"val/loss": 0.2, "test/acc": 0.8}  # scalars, not lists
    assert rows[3]["error"] == "bad lr"
    assert len(sweep_rows(sweep)) == 6  # without an id: every job found


@pytest.mark.slow
def test_joblib_launcher_two_parallel_jobs(cli_env, tmp_path):
    sweep = tmp_path / "sweep"
    out = run_dlx(
        "train",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "optimizer.lr=0.001,0.05",
        *SMOKE,
        f"hydra.sweep.dir={sweep}",
        env=cli_env,
    )
    assert out.returncode == 0, out.stderr
    assert "Joblib.Parallel(n_jobs=2" in out.stdout
    rows = check_summary(sweep, out.stdout, 2)
    assert {r["optimizer.lr"] for r in rows} == {"0.001", "0.05"}
    # two worker processes, one job each
    pids = {json.loads((Path(r["run_dir"]) / STATUS_FILE).read_text())["pid"] for r in rows}
    assert len(pids) == 2
    # the cores shared between the two jobs at once, not torch's all-cores default in each
    threads = {json.loads((Path(r["run_dir"]) / "metrics.json").read_text())["num_threads"]
               for r in rows}  # fmt: skip
    assert threads == {max(1, cores() // 2)}


@pytest.mark.slow
def test_submitit_local_launcher_two_jobs(cli_env, tmp_path):
    sweep = tmp_path / "sweep"
    out = run_dlx(
        "train",
        "-m",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=5",
        "optimizer.lr=0.001,0.05",
        *SMOKE,
        f"hydra.sweep.dir={sweep}",
        env=cli_env,
    )
    assert out.returncode == 0, out.stderr
    assert "Submitit 'local' sweep output dir" in out.stdout
    rows = check_summary(sweep, out.stdout, 2)
    assert {r["optimizer.lr"] for r in rows} == {"0.001", "0.05"}
    assert list((sweep / ".submitit").glob("*/*_log.out")), "submitit wrote no job logs"


def optuna_noise(text: str) -> list[str]:
    noise = ("Warning", "A new study created", "setup plugin", "Traceback")
    return [line for line in text.splitlines() if any(n in line for n in noise)]


@pytest.mark.slow
def test_optuna_search_three_trials(cli_env, tmp_path):
    sweep = tmp_path / "sweep"
    out = run_dlx(
        "train",
        "hparams_search=digits_optuna",
        "hydra.sweeper.n_trials=3",
        *SMOKE,
        f"hydra.sweep.dir={sweep}",
        env=cli_env,
    )
    assert out.returncode == 0, out.stderr
    assert optuna_noise(out.stdout + out.stderr) == []
    rows = check_summary(sweep, out.stdout, 3)
    assert all(r["monitor"] == "val/acc" for r in rows)
    for key in ("optimizer.lr", "trainer.batch_size", "model.hidden", "model.dropout"):
        assert len({r[key] for r in rows}) > 1, f"Optuna did not vary {key}"
    for r in rows:
        assert 1e-4 <= float(r["optimizer.lr"]) <= 1e-1 and 0 <= float(r["model.dropout"]) <= 0.5
        assert json.loads(r["model.hidden"])[0] in (32, 64, 128, 256)
    # Optuna optimised the value each job returned: its best is the summary's first row
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert best.best_value == pytest.approx(float(rows[0]["value"]))


@pytest.mark.slow
def test_optuna_failed_trials_do_not_stop_the_study(cli_env, tmp_path):
    sweep = tmp_path / "sweep"
    out = run_dlx(
        "train",
        "hparams_search=digits_optuna",
        "hydra.sweeper.n_trials=4",
        "optimizer.lr=choice(0.01,-1)",  # a search-space override: some trials get lr=-1
        *SMOKE,
        f"hydra.sweep.dir={sweep}",
        env=cli_env,
    )
    assert out.returncode == 1
    assert optuna_noise(out.stdout + out.stderr) == []
    rows = check_summary(sweep, out.stdout, 4)
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and len(failed) < 4, rows
    assert {r["error"] for r in failed} == {"optimizer.lr=-1.0 must be > 0"}
    assert {r["optimizer.lr"] for r in rows if r["status"] == "done"} == {"0.01"}
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert math.isfinite(best.best_value) and best.best_params["optimizer.lr"] == 0.01


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_stops_the_whole_sweep_not_just_its_job(signum, tmp_path, cli_env):
    # A preempted sweep (Slurm's SIGTERM, a Ctrl-C) used to record the job as failed and
    # start the next one. It stops, says what was saved and how to go on, exits 128 + n.
    import time

    from tests.conftest import DLX

    sweep = tmp_path / "sweep"
    proc = subprocess.Popen(
        [DLX, "train", "-m", "dataset=digits", "trainer.max_epochs=200", "optimizer.lr=1e-3,1e-2",
         f"hydra.sweep.dir={sweep}"],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (sweep / "0" / "metrics.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 128 + signum, err
    assert len(lines) == 2 and lines[0] == NO_VAL, err
    # One line: where the stopped job saved its checkpoint, and how to go on with the sweep.
    stop, again = lines[1].split("; resume the sweep with: ")
    assert stop.startswith(f"error: stopped by {signum.name}") and stop.endswith("(job 0)"), err
    assert f"saved {sweep / '0' / 'checkpoints' / 'last.pt'}" in stop
    assert shlex.split(again) == [
        "dlx", "train", "-m", "dataset=digits", "trainer.max_epochs=200", "optimizer.lr=1e-3,1e-2",
        f"hydra.sweep.dir={sweep}", "sweep.resume=true",
    ]  # fmt: skip
    assert not (sweep / "1").exists()  # the second job never started ...
    rows = read_csv(sweep)  # ... and the summary says so
    assert [(r["job"], r["status"], r["optimizer.lr"]) for r in rows] == [
        ("0", "failed", "0.001"),
        ("1", "not started", "0.01"),
    ]
    assert "sweep: 2 jobs, 1 failed, 1 not started" in out
    assert (sweep / "0" / "checkpoints" / "last.pt").exists()
    # The job's own line (in its log) continues it alone, as a single run.
    status = json.loads((sweep / "0" / STATUS_FILE).read_text())
    alone = status["error"].split("; resume with: ")[1]
    assert shlex.split(alone)[2:] == [
        "dataset=digits", "trainer.max_epochs=200", "optimizer.lr=0.001", "hydra.mode=RUN",
        f"hydra.run.dir={sweep / '0'}", "trainer.resume=auto",
    ]  # fmt: skip
