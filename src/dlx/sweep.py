"""Sweeps (`dlx train -m ...`): the plugins they need, each job's side, and the end.

Every job of a multirun writes `job_status.json` in its run dir when it starts and again
when it ends (done with its monitored metric, or failed with its one error line).
`SweepSummary`, a Hydra callback, has them summarised when the multirun ends
(dlx/sweep_summary.py: `sweep_summary.csv`, `sweep_summary.txt`) and plots the metric
against each swept parameter.

Torch-free and light: Hydra instantiates the callback for every `dlx train`.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig

from dlx.core.errors import ConfigError, DlxError
from dlx.sweep_summary import STATUS_FILE, SUMMARY_CSV, write_summary

log = logging.getLogger("dlx")

# Set by the launching process for its jobs (the env reaches joblib workers and submitit
# jobs), so the summary skips status files a previous sweep left in a reused sweep dir.
SWEEP_ID_ENV = "DLX_SWEEP_ID"


# --- optional plugins -------------------------------------------------------------------------

# command-line option -> (plugin module, library it drives, the dlx extra that installs both)
_PLUGINS: dict[str, tuple[str, str, str]] = {
    "hydra/launcher=joblib": ("hydra_plugins.hydra_joblib_launcher", "joblib", "sweep"),
    "hydra/launcher=submitit_local": ("hydra_plugins.hydra_submitit_launcher", "submitit", "slurm"),
    "hydra/launcher=submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "submitit", "slurm"),
    "hydra/launcher=slurm": ("hydra_plugins.hydra_submitit_launcher", "submitit", "slurm"),
    "hydra/sweeper=optuna": ("hydra_plugins.hydra_optuna_sweeper", "optuna", "sweep"),
    "hparams_search=": ("hydra_plugins.hydra_optuna_sweeper", "optuna", "sweep"),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_plugins(argv: Iterable[str]) -> None:
    """One line naming the extra to install when an override needs a plugin that is missing
    (Hydra alone would say "Could not find 'hydra/launcher/joblib'")."""
    for arg in argv:
        option = arg.lstrip("+~").removeprefix("override ")
        for prefix, (plugin, library, extra) in _PLUGINS.items():
            if option.startswith(prefix) and not (_installed(plugin) and _installed(library)):
                raise ConfigError(
                    f"{option} needs Hydra's {library} plugin, which is not installed here; "
                    f"pip install 'dlx[{extra}]'"
                )


def is_search(argv: Iterable[str]) -> bool:
    """`hparams_search=<name>` makes a multirun without -m (its config sets hydra.mode)."""
    return any(a.lstrip("+").startswith(("hparams_search=", "hydra.mode=MULTIRUN")) for a in argv)


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
            _failed(status, run_dir, str(err), direction)
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
    status: dict[str, Any], run_dir: Path, line: str, direction: str | None
) -> float | None:
    from dlx.core.io import write_json

    log.error("error: %s (job %d failed; the sweep goes on)", line, status["job"])
    status.update(status="failed", error=line, ended=time.time())
    write_json(status, run_dir / STATUS_FILE)
    if direction is None:
        return None
    return -math.inf if direction == "max" else math.inf


# --- the launching side: the process that runs `dlx train -m` --------------------------------

# The multirun this process launched: its dir, its id, and its rows once summarized.
_active: dict[str, Any] = {}


class SweepSummary(Callback):
    """Hydra callback (configs/hydra/default.yaml): a summary after every multirun."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweeper = config.hydra.sweeper
        if "optuna" in str(sweeper.get("_target_", "")).lower():
            _check_optuna_storage(sweeper.get("storage"))
            _check_sweep_direction(config)
            _quiet_optuna()
        sweep_id = uuid.uuid4().hex
        os.environ[SWEEP_ID_ENV] = sweep_id
        _active.clear()
        viz = config.get("viz") or {}
        _active.update(
            dir=Path(config.hydra.sweep.dir).absolute(),
            id=sweep_id,
            rows=None,
            plot=bool(viz.get("enabled", True)),
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        finish()


def finish() -> str | None:
    """Summarize the multirun this process launched (once). Returns the line to end with
    when a job failed or did not finish; None when all went well or there was no multirun.

    Called by the callback when the sweep ends, and by `dlx train` after Hydra returns or
    fails, so a sweep whose sweeper gave up (all Optuna trials failed) still gets its table.
    """
    if not _active:
        return None
    if _active["rows"] is None:
        _active["rows"] = write_summary(_active["dir"], _active["id"])
        if _active["plot"]:
            _plot(_active["dir"], _active["rows"])
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


def _check_optuna_storage(storage: Any) -> None:
    """optuna 2.x (the Hydra plugin pins optuna < 3) cannot use a database through
    SQLAlchemy 2: it fails deep inside with a bare AssertionError. Refuse in one line."""
    if not storage:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        sqlalchemy, optuna = version("sqlalchemy"), version("optuna")
    except PackageNotFoundError:
        return
    if int(sqlalchemy.split(".")[0]) >= 2 and int(optuna.split(".")[0]) < 3:
        from dlx.core.errors import fail

        fail(
            f"hydra.sweeper.storage={storage}: optuna {optuna} cannot use a database with "
            f"SQLAlchemy {sqlalchemy}; pip install 'sqlalchemy<2', or leave the storage null "
            "(the study lives in memory)"
        )


def _quiet_optuna() -> None:
    """optuna's INFO lines, and the deprecation warnings SQLAlchemy 2 gives at its import, are
    noise here: the launcher prints each trial's overrides and the summary their results."""
    import warnings

    # optuna imports alembic, whose INFO lines ("setup plugin ...") Hydra's logging would show.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
