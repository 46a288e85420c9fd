"""Sweeps (`dlx train -m ...`): each job's side, the start and the end (the plugins they
need: dlx/sweep_plugins.py; resuming: dlx/sweep_resume.py).

Every job of a multirun writes `job_status.json` in its run dir when it starts and again
when it ends (done with its monitored metric, or failed with its one error line).
`SweepSummary`, a Hydra callback, has them summarised when the multirun ends
(dlx/sweep_summary.py: `sweep_summary.csv`, `sweep_summary.txt`) and plots the metric
against each swept parameter.

Torch-free and light: Hydra instantiates the callback for every `dlx train`.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig

from dlx.core.errors import ConfigError, DlxError, reports_errors
from dlx.sweep_summary import STATUS_FILE, SUMMARY_CSV, write_summary

log = logging.getLogger("dlx")

# Set by the launching process for its jobs (the env reaches joblib workers and submitit
# jobs), so the summary skips status files a previous sweep left in a reused sweep dir.
SWEEP_ID_ENV = "DLX_SWEEP_ID"


# --- the job side: called by the task function in each job's process -----------------------


def objective(metrics: dict[str, Any]) -> tuple[str | None, float | None]:
    """The monitored metric of a run and its final value: what a sweeper optimises.

    Torch runs name theirs (`monitor`: trainer.monitor, or val/<task metric>); runners
    without one (scikit-learn, Q-learning) fall back to the first accuracy or loss they have.
    """
    keys = [metrics.get("monitor"), "val/acc", "test/acc", "val/loss", "test/loss"]
    for key in keys:
        if isinstance(key, str) and isinstance(metrics.get(key), (int, float)):
            return key, float(metrics[key])
    return None, None


def _direction(hc: Any) -> str | None:
    """The sweeper's optimisation direction (Optuna's `direction`) as min | max; None for
    sweepers without one and for multi-objective studies."""
    direction = hc.sweeper.get("direction")
    if direction is None or isinstance(direction, (list, ListConfig)):
        return None
    name = str(direction).rsplit(".", 1)[-1]  # "maximize", or the enum's "Direction.maximize"
    return {"maximize": "max", "minimize": "min"}.get(name)


_WORDS = {"max": "maximize", "min": "minimize"}


def _check_direction(metric: str, monitor_mode: str | None, direction: str | None) -> str:
    """The metric's mode (min | max); a ConfigError when the sweeper optimises the other way."""
    from dlx.engine.parts.monitor import mode_for

    mode = mode_for(metric, monitor_mode)
    if direction is not None and direction != mode:
        raise ConfigError(
            f"hydra.sweeper.direction={_WORDS[direction]} but {metric} is better "
            f"{'larger' if mode == 'max' else 'smaller'}; set hydra.sweeper.direction="
            f"{_WORDS[mode]} (or trainer.monitor and trainer.monitor_mode)"
        )
    return mode


def run_job(cfg: DictConfig, hc: Any, train: Callable[[], dict[str, Any]]) -> float | None:
    """Run one job of a multirun: record it, and never end the whole sweep.

    A DlxError (a bad value for this job) or any other exception is logged and written to
    the job's `job_status.json` with its one line; the basic sweeper goes on to the next
    job. Optuna is told the worst value (-inf when it maximizes): TPE then steers away from
    that region, and a study whose trials all fail still ends with its summary (optuna 2.x
    stops the study with a traceback when no trial completed, and refuses NaN). The
    summary and the multirun's exit code (see `finish`) say that the job failed.
    """
    from dlx.core.io import write_json

    run_dir = Path(hc.runtime.output_dir)
    status: dict[str, Any] = {
        "job": int(hc.job.num),
        "overrides": list(hc.overrides.task),
        "run_dir": str(run_dir),
        "status": "running",
        "sweep_id": os.environ.get(SWEEP_ID_ENV),
        "host": socket.gethostname(),  # where it ran: a cluster job's node
        "pid": os.getpid(),
        "started": time.time(),
    }
    write_json(status, run_dir / STATUS_FILE)
    direction = _direction(hc)
    trainer = cfg.get("trainer") or {}
    try:
        if direction and trainer.get("monitor"):
            # Known before training: a wrong direction would otherwise waste the trial.
            _check_direction(trainer.monitor, trainer.get("monitor_mode"), direction)
        metrics = train()
        key, value = objective(metrics)
        mode = (
            None if key is None else _check_direction(key, trainer.get("monitor_mode"), direction)
        )
    except DlxError as err:
        if err.exit_code > 128:  # a signal (preemption, Ctrl-C) stops the sweep, not the job
            _failed(status, run_dir, str(err), direction, stopped=True)
            raise
        return _failed(status, run_dir, str(err), direction)
    except Exception as err:  # a bug, not bad input: keep the traceback in the job's log
        log.exception("job %s failed", status["job"])
        line = f"{type(err).__name__}: {err}".splitlines()[0]
        return _failed(status, run_dir, line, direction)
    status.update(status="done", monitor=key, mode=mode, value=value, ended=time.time())
    write_json(status, run_dir / STATUS_FILE)
    return value


def _failed(
    status: dict[str, Any], run_dir: Path, line: str, direction: str | None, stopped: bool = False
) -> float | None:
    from dlx.core.io import write_json

    if stopped:  # the sweep ends next, in one line; this job's own way to go on is logged
        log.info("job %d: %s", status["job"], line)
    else:
        log.error("error: %s (job %d failed; the sweep goes on)", line, status["job"])
    status.update(status="failed", error=line, ended=time.time())
    write_json(status, run_dir / STATUS_FILE)
    if direction is None:
        return None
    return -math.inf if direction == "max" else math.inf


# --- the launching side: the process that runs `dlx train -m` --------------------------------

# The multirun this process launched: its dir, its id, and its rows once summarized.
_active: dict[str, Any] = {}


class SweepStopped(BaseException):
    """A signal stopped a job of the sweep (Ctrl-C, a scheduler's SIGTERM): the sweep stops.

    Not an Exception: it passes Hydra's handlers, which would record a failed job and go
    on with the next one, up to `dlx train`, which ends in one line saying how to resume."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message, exit_code)  # both in args: it pickles (a joblib worker's)
        self.message, self.exit_code = message, exit_code

    def __str__(self) -> str:
        return self.message


class SweepSummary(Callback):
    """Hydra callback (configs/hydra/default.yaml): before a multirun, its sweep dir (a new
    one, or the one it resumes: dlx/rundirs.py, dlx/sweep_resume.py); after it, a summary."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        reports_errors(_start)(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        finish()


def _start(config: DictConfig) -> None:
    from dlx import sweep_resume
    from dlx.rundirs import claim_sweep_dir

    resume = bool((config.get("sweep") or {}).get("resume"))
    if "optuna" in str(config.hydra.sweeper.get("_target_", "")).lower():
        from dlx import sweep_optuna

        _check_sweep_direction(config)  # refusals first: they leave no sweep dir behind
        named = Path(str(config.hydra.sweep.dir)).expanduser().absolute()
        sweep_optuna.prepare(config, named if resume else None)
    sweep_dir = claim_sweep_dir(config, resume).absolute()
    planned = sweep_resume.planned_jobs(config)
    sweep_id = uuid.uuid4().hex
    if resume:
        sweep_resume.check_plan(sweep_dir, planned)
        sweep_id = sweep_resume.previous_id(sweep_dir) or sweep_id
    _warn_without_validation(config)
    sweep_resume.install()  # in this process: the basic launcher runs its jobs here
    os.environ[SWEEP_ID_ENV] = sweep_id
    _active.clear()
    viz = config.get("viz") or {}
    _active.update(
        dir=sweep_dir,
        id=None if resume else sweep_id,  # a resumed sweep's summary: every job in its dir
        planned=planned,
        rows=None,
        plot=bool(viz.get("enabled", True)),
    )


def _warn_without_validation(config: DictConfig) -> None:
    """Jobs ranked on what they were trained on reward overfitting: say so, once."""
    try:
        dataset = config.get("dataset") or {}
        monitor = str((config.get("trainer") or {}).get("monitor") or "")
        held_out = dataset.get("val_split") or dataset.get("val_path")
    except Exception:  # an interpolation that resolves only in a job
        return
    task = config.hydra.overrides.task
    swept = any(o.split("=")[0].lstrip("+") == "dataset.val_split" for o in task)
    if held_out or swept or (monitor and not monitor.startswith("train/")):
        return
    sys.stderr.write(
        "warning: no validation split (dataset.val_split=0.0): the jobs are ranked on a "
        "training or test metric, not on held-out data; hold out one with dataset.val_split=0.2\n"
    )


def active_dir() -> Path | None:
    """The sweep dir of the multirun this process launched, if any."""
    return _active.get("dir")


def finish() -> str | None:
    """Summarize the multirun this process launched (once). Returns the line to end with
    when a job failed or did not finish; None when all went well or there was no multirun.

    Called by the callback when the sweep ends, and by `dlx train` after Hydra returns or
    fails, so a sweep whose sweeper gave up (all Optuna trials failed) still gets its table.
    """
    if not _active:
        return None
    if _active["rows"] is None:
        _active["rows"] = write_summary(_active["dir"], _active["id"], _active["planned"])
        if _active["plot"]:
            _plot(_active["dir"], [r for r in _active["rows"] if r["status"] != "not started"])
    rows = _active["rows"]
    bad = [r for r in rows if r["status"] != "done"]
    if not bad:
        return None
    first = next((f" (job {r['job']}: {r['error']})" for r in bad if r["error"]), "")
    return (
        f"{len(bad)} of {len(rows)} jobs failed or did not finish{first}; "
        f"see {_active['dir'] / SUMMARY_CSV}"
    )


def _plot(sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
    """The monitored metric against each swept parameter, in <sweep dir>/plots/sweep.png."""
    if not any(r["status"] == "done" for r in rows):
        return
    from dlx.viz.sweep import plot_sweep

    try:
        path = plot_sweep(sweep_dir, rows)
    except DlxError as err:  # nothing to plot against (a single job, no overrides)
        log.info("sweep plot skipped: %s", err)
        return
    log.info("sweep plot: %s", path)


def _check_sweep_direction(config: DictConfig) -> None:
    """A study that maximizes a loss would waste every trial: refuse it before the first,
    when the monitored metric is named in the config (else each job checks it at its end)."""
    trainer = config.get("trainer") or {}
    if not trainer.get("monitor"):
        return
    try:
        _check_direction(trainer.monitor, trainer.get("monitor_mode"), _direction(config.hydra))
    except DlxError as err:
        from dlx.core.errors import fail

        fail(str(err), err.exit_code)
