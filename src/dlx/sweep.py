"""Sweeps (`dlx train -m ...`): what each job leaves behind, and the summary of a multirun.

Every job of a multirun writes `job_status.json` in its run dir when it starts and again
when it ends (done with its monitored metric, or failed with its one error line). Launchers
may run jobs in other processes or on other machines (joblib, submitit), so the summary is
built from those files, not from memory: `SweepSummary`, a Hydra callback, reads them when
the multirun ends and writes `sweep_summary.csv` and `sweep_summary.txt` (a rich table) in
the sweep dir. `sweep_rows()` gives the same rows to other code (figures of metric vs
parameter).

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
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig

from dlx.errors import ConfigError, DlxError

log = logging.getLogger("dlx")

STATUS_FILE = "job_status.json"
SUMMARY_CSV = "sweep_summary.csv"
SUMMARY_TXT = "sweep_summary.txt"
# Set by the launching process for its jobs (the env reaches joblib workers and submitit
# jobs), so the summary skips status files a previous sweep left in a reused sweep dir.
SWEEP_ID_ENV = "DLX_SWEEP_ID"

# Metrics that end up in the summary besides the monitored one: scalars only.
_EXTRA_METRICS = ("num_params", "epochs", "best_epoch", "wall_time_s")

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
    from dlx.engine.callbacks import mode_for

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
    from dlx.io import write_json

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
    from dlx.io import write_json

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
        from dlx.errors import fail

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
        from dlx.errors import fail

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


# --- reading a sweep dir ---------------------------------------------------------------------


def _parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """`["optimizer.lr=0.01", "model.hidden=[32]"]` -> {"optimizer.lr": 0.01, "model.hidden":
    [32]}, typed by Hydra's own override parser (numbers become numbers, for plots)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    out: dict[str, Any] = {}
    for text in overrides:
        try:
            override = parser.parse_override(text)
            out[override.get_key_element()] = override.value()
        except Exception:  # an override Hydra ran but cannot re-parse alone: keep the text
            key, _, value = text.partition("=")
            out[key] = value
    return out


def _load_json(path: Path) -> dict[str, Any] | None:
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def sweep_rows(sweep_dir: Path | str, sweep_id: str | None = None) -> list[dict[str, Any]]:
    """The jobs of a sweep, best first by the monitored metric, then failed and unfinished.

    Each row: `rank` (1 = best; None when the job has no value), `job` (Hydra's job number),
    `status` (done | failed | unfinished: killed or still running), `error` (its one line),
    `overrides` (dict, typed), `run_dir`, `monitor` (metric name), `mode` (min | max),
    `value` (its final value) and `metrics` (the other final scalar metrics of metrics.json).
    With `sweep_id`, status files from another sweep in the same dir are left out.
    """
    sweep_dir = Path(sweep_dir)
    rows = []
    for path in sorted(sweep_dir.rglob(STATUS_FILE)):
        status = _load_json(path)
        if status is None or "job" not in status:
            continue
        if sweep_id and status.get("sweep_id") not in (None, sweep_id):
            continue
        run_dir = path.parent
        metrics = _load_json(run_dir / "metrics.json") or {}
        state = status.get("status")
        rows.append(
            {
                "rank": None,
                "job": int(status["job"]),
                "status": state if state in ("done", "failed") else "unfinished",
                "error": status.get("error"),
                "overrides": _parse_overrides(list(status.get("overrides") or [])),
                "run_dir": str(run_dir),
                "monitor": status.get("monitor"),
                "mode": status.get("mode"),
                "value": status.get("value"),
                "metrics": {
                    k: v
                    for k, v in metrics.items()
                    if ("/" in k or k in _EXTRA_METRICS)
                    and isinstance(v, (int, float))
                    and not isinstance(v, bool)
                },
            }
        )
    return _rank(rows)


def _rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Rank on the metric most jobs monitor (a sweep over val_split could mix val/ and train/).
    monitors = Counter(r["monitor"] for r in rows if r["status"] == "done" and r["monitor"])
    key = monitors.most_common(1)[0][0] if monitors else None
    mode = next((r["mode"] for r in rows if r["monitor"] == key), "max")

    def value(row: dict[str, Any]) -> float | None:
        v = row["value"] if row["monitor"] == key else row["metrics"].get(key)
        return None if v is None or math.isnan(v) else float(v)

    ranked = sorted(
        (r for r in rows if r["status"] == "done" and value(r) is not None),
        key=lambda r: (-value(r) if mode == "max" else value(r), r["job"]),  # type: ignore[operator]
    )
    for i, row in enumerate(ranked, 1):
        row.update(rank=i, monitor=key, mode=mode, value=value(row))
    order = {"done": 0, "failed": 1, "unfinished": 2}
    rest = sorted(
        (r for r in rows if r["rank"] is None), key=lambda r: (order[r["status"]], r["job"])
    )
    return ranked + rest


# --- writing the summary ---------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}"
    if isinstance(value, list):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return "" if value is None else str(value)


def _csv_value(value: Any) -> str:
    import json

    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "" if value is None else str(value)


def _show(value: Any) -> str:
    """An override's value in the table: short (Optuna samples floats to 17 digits)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return _csv_value(value)


def _override_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Every override key of the sweep, in the order the jobs give them."""
    keys: list[str] = []
    for row in sorted(rows, key=lambda r: r["job"]):
        keys += [k for k in row["overrides"] if k not in keys]
    return keys


def summary_csv(rows: list[dict[str, Any]]) -> str:
    """One line per job: rank, job, status, monitor, value, one column per override key,
    the final metrics, run_dir, error."""
    import csv
    import io

    overrides = _override_keys(rows)
    metrics = sorted({k for r in rows for k in r["metrics"]})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["rank", "job", "status", "monitor", "value", *overrides, *metrics, "run_dir", "error"]
    )
    for r in rows:
        writer.writerow(
            [
                r["rank"] or "",
                r["job"],
                r["status"],
                r["monitor"] or "",
                "" if r["value"] is None else r["value"],
                *(_csv_value(r["overrides"].get(k)) for k in overrides),
                *(r["metrics"].get(k, "") for k in metrics),
                r["run_dir"],
                r["error"] or "",
            ]
        )
    return buf.getvalue()


def summary_table(rows: list[dict[str, Any]], sweep_dir: Path) -> Any:
    """A rich Table of the jobs: the overrides that differ between jobs, the monitored
    metric, test/acc when it is not the monitored one, the run dir (under the sweep dir)."""
    from rich.table import Table

    keys = _override_keys(rows)
    varying = [k for k in keys if len({_csv_value(r["overrides"].get(k)) for r in rows}) > 1]
    monitor = next((r["monitor"] for r in rows if r["rank"]), None)
    mode = next((r["mode"] for r in rows if r["rank"]), None)
    extra = [k for k in ("test/acc",) if k != monitor and any(k in r["metrics"] for r in rows)]
    counts = Counter(r["status"] for r in rows)
    failed = counts["failed"] + counts["unfinished"]
    title = f"sweep: {len(rows)} job{'s' * (len(rows) != 1)}" + "".join(
        f", {counts[s]} {s}" for s in ("failed", "unfinished") if counts[s]
    )
    if monitor:
        title += f", ranked by {monitor} ({'higher' if mode == 'max' else 'lower'} is better)"
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("job", justify="right")
    table.add_column("status")
    table.add_column(monitor or "metric", justify="right")
    for k in extra:
        table.add_column(k, justify="right")
    for k in varying:
        table.add_column(k)
    table.add_column("run dir")
    if failed:
        table.add_column("error", overflow="fold")
    for r in rows:
        run_dir = Path(r["run_dir"])
        shown = run_dir.relative_to(sweep_dir) if run_dir.is_relative_to(sweep_dir) else run_dir
        cells = [
            str(r["rank"] or ""),
            str(r["job"]),
            r["status"],
            _fmt(r["value"]),
            *(_fmt(r["metrics"].get(k)) for k in extra),
            *(_show(r["overrides"].get(k)) for k in varying),
            str(shown),
        ]
        if failed:
            cells.append(r["error"] or "")
        style = None if r["status"] == "done" else "red"
        table.add_row(*cells, style=style)
    return table


def write_summary(sweep_dir: Path, sweep_id: str | None = None) -> list[dict[str, Any]]:
    """Write sweep_summary.csv and sweep_summary.txt into sweep_dir and print the table."""
    import io

    from rich.console import Console

    from dlx.io import atomic_write_text

    sweep_dir = Path(sweep_dir)
    rows = sweep_rows(sweep_dir, sweep_id)
    if not rows:  # the sweep failed before any job ran (Hydra said why): nothing to add
        return rows
    table = summary_table(rows, sweep_dir)
    atomic_write_text(summary_csv(rows), sweep_dir / SUMMARY_CSV)
    text = io.StringIO()
    Console(file=text, width=200, color_system=None).print(table)
    atomic_write_text(text.getvalue(), sweep_dir / SUMMARY_TXT)
    console = Console()
    if not console.is_terminal:  # a log file or a pipe: no wrapping at 80 columns
        console = Console(width=200)
    console.print(table)
    console.print(f"summary: {sweep_dir / SUMMARY_CSV}", highlight=False, soft_wrap=True)
    return rows
