"""Sweeps that resume: `dlx train -m <the same overrides> hydra.sweep.dir=X sweep.resume=true`.

Every job of a sweep records itself in `<job dir>/job_status.json` (dlx/sweep.py). Run again
into the same sweep dir with `sweep.resume=true`, each job is looked up there before Hydra
writes anything for it:
- done, with the same overrides: not run; its files are left as they are, and its recorded
  value is handed back (to Optuna, which learns from it);
- started but not done (killed, stopped, failed), with a checkpoint: run with
  `trainer.resume=auto` in its own dir, so it continues bit-exactly from last.pt, its first
  `.hydra/` record kept (this attempt's goes to `.hydra/resumes/<n>/`); without one, run again;
- never started: run.
A job whose dir holds a job with other overrides is refused before anything runs.

The check wraps Hydra's `run_job` where each launcher calls it (basic, joblib, submitit), in
the process that runs the job: the launching one, a joblib worker or a submitit job (all
import dlx.train, which installs it, to run the job's task function). Torch-free.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from dlx.core.errors import ConfigError, fail
from dlx.sweep_summary import STATUS_FILE, parse_overrides

log = logging.getLogger("dlx")

# Where each launcher calls Hydra's run_job (imported by name into these modules).
LAUNCHERS = (
    "hydra._internal.core_plugins.basic_launcher",
    "hydra_plugins.hydra_joblib_launcher._core",
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher",
)
OWN_KEYS = ("sweep.resume=",)  # overrides that do not change what a job computes


def install() -> None:
    """Wrap Hydra's run_job (idempotent): in hydra.core.utils, for the launcher modules
    imported from now on (Hydra's plugin scan executes them again in a job's process), and
    in those imported already."""
    import hydra.core.utils

    if not getattr(hydra.core.utils.run_job, "_dlx_resume", False):
        hydra.core.utils.run_job = _resuming(hydra.core.utils.run_job)
    for name in LAUNCHERS:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "run_job"):
            module.run_job = hydra.core.utils.run_job  # type: ignore[attr-defined]


def _resuming(run_job: Any) -> Any:
    @functools.wraps(run_job)
    def run_job_resuming(*args: Any, **kwargs: Any) -> Any:
        names = ("hydra_context", "task_function", "config", "job_dir_key", "job_subdir_key")
        call = {**dict(zip(names, args, strict=False)), **kwargs}
        config = call["config"]
        if not (config.get("sweep") or {}).get("resume") or call.get("job_subdir_key") is None:
            return run_job(*args, **kwargs)
        job_dir = _job_dir(config, call["job_dir_key"], call["job_subdir_key"])
        before = _read(job_dir / STATUS_FILE)
        if before is None:
            return run_job(*args, **kwargs)  # never started
        num = int(config.hydra.job.num)
        mismatch = different(before.get("overrides"), config.hydra.overrides.task)
        if mismatch:
            fail(f"sweep.resume=true: {job_dir} holds {mismatch}")
        if before.get("status") == "done":
            _say(f"job {num}: done in the earlier sweep; not run again")
            return _done(config, before.get("value"))
        if _checkpoint(job_dir):
            from dlx.rundirs import keep_record

            with open_dict(config.trainer):
                config.trainer.resume = config.trainer.get("resume") or "auto"
            keep_record(config, job_dir)
            _say(f"job {num}: resuming from {_checkpoint(job_dir)}")
        return run_job(*args, **kwargs)

    run_job_resuming._dlx_resume = True  # type: ignore[attr-defined]
    return run_job_resuming


def _say(line: str) -> None:
    """A line for the sweep's output: a log line where logging is set up (the launching
    process), else printed (a joblib worker, before Hydra sets up the job's logging)."""
    if logging.getLogger().handlers:
        log.info(line)
    else:
        print(line, flush=True)


def _job_dir(config: DictConfig, dir_key: str, subdir_key: str) -> Path:
    """The job's dir, as Hydra's run_job computes it (`${hydra.job.num}` resolves)."""
    from hydra.core.hydra_config import HydraConfig

    holder = HydraConfig.instance()
    before = holder.cfg
    holder.set_config(config)
    try:
        folder = Path(str(OmegaConf.select(config, dir_key)))
        return (folder / str(OmegaConf.select(config, subdir_key))).absolute()
    finally:
        holder.cfg = before


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("job"), int) else None


def _checkpoint(job_dir: Path) -> Path | None:
    folder = job_dir / "checkpoints"
    return next((p for p in (folder / "last.pt", folder / "previous.pt") if p.is_file()), None)


def _done(config: DictConfig, value: Any) -> Any:
    """What run_job returns for a job that finished in the earlier sweep."""
    from hydra.core.utils import JobReturn, JobStatus

    ret = JobReturn()
    ret.overrides = list(config.hydra.overrides.task)
    ret.hydra_cfg = config
    ret.working_dir = os.getcwd()
    ret.task_name = str(config.hydra.job.name)
    ret.status = JobStatus.COMPLETED
    ret.return_value = value
    return ret


def _comparable(overrides: Any) -> dict[str, Any]:
    kept = [str(o) for o in overrides or [] if not str(o).lstrip("+").startswith(OWN_KEYS)]
    return parse_overrides(kept)


def different(recorded: Any, now: Any) -> str | None:
    """How a recorded job's overrides differ from this one's (None: the same job)."""
    old, new = _comparable(recorded), _comparable(now)
    if old == new:
        return None
    changed = [k for k in {**old, **new} if old.get(k, "<unset>") != new.get(k, "<unset>")]
    shown = ", ".join(f"{k}={old.get(k, '<unset>')}" for k in changed[:3])
    return (
        f"a job of another sweep ({shown}, not {', '.join(_item(k, new) for k in changed[:3])}); "
        "resume with the same overrides, or give a new hydra.sweep.dir"
    )


def _item(key: str, overrides: dict[str, Any]) -> str:
    return f"{key}={overrides.get(key, '<unset>')}"


# --- the launching side ----------------------------------------------------------------------


def previous_jobs(sweep_dir: Path) -> dict[int, dict[str, Any]]:
    """{job number: its job_status.json} of the jobs an earlier sweep left in sweep_dir."""
    jobs = {}
    for path in sorted(sweep_dir.glob(f"**/{STATUS_FILE}")):
        status = _read(path)
        if status is not None:
            jobs[int(status["job"])] = status
    return jobs


def planned_jobs(config: DictConfig) -> list[list[str]] | int | None:
    """The jobs this multirun will launch: the basic sweeper's overrides of each, in job
    order; Optuna's number of trials; None when it cannot be told."""
    sweeper = config.hydra.sweeper
    target = str(sweeper.get("_target_", ""))
    if "optuna" in target.lower():
        return int(sweeper.get("n_trials") or 0) or None
    if not target.endswith("BasicSweeper"):
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = sweeper.get("params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    try:
        parsed = OverridesParser.create().parse_overrides(arguments)
        (jobs,) = BasicSweeper.split_arguments(parsed, None)
    except Exception:  # glob() needs Hydra's config loader; the summary does without a plan
        return None
    return [list(job) for job in jobs]


def check_plan(sweep_dir: Path, planned: Any) -> None:
    """Refuse, before any job runs, to resume a sweep whose jobs were other ones."""
    if not isinstance(planned, list):
        return
    for num, status in sorted(previous_jobs(sweep_dir).items()):
        if num < len(planned):
            mismatch = different(status.get("overrides"), planned[num])
            if mismatch:
                raise ConfigError(f"sweep.resume=true: job {num} in {sweep_dir} is {mismatch}")


def previous_id(sweep_dir: Path) -> str | None:
    """The sweep id the earlier sweep's jobs recorded, when they share one."""
    ids = {s.get("sweep_id") for s in previous_jobs(sweep_dir).values()}
    return ids.pop() if len(ids) == 1 else None


def resume_command(argv: list[str], sweep_dir: Path) -> str:
    """The command line that continues this sweep."""
    kept = [a for a in argv if not a.lstrip("+").startswith(("hydra.sweep.dir=", *OWN_KEYS))]
    return shlex.join(["dlx", "train", *kept, f"hydra.sweep.dir={sweep_dir}", "sweep.resume=true"])


def job_command(overrides: list[str], run_dir: Path, sweep_job: bool = False) -> str:
    """The command line that continues a run; a sweep's job alone, as a single run (an
    Optuna trial with its sampled values, not a new search)."""
    own = ("trainer.resume=", "hydra.run.dir=", "hydra.mode=", *OWN_KEYS)
    kept = [o for o in overrides if not o.lstrip("+").startswith(own)]
    mode = ["hydra.mode=RUN"] if sweep_job else []
    return shlex.join(
        ["dlx", "train", *kept, *mode, f"hydra.run.dir={run_dir}", "trainer.resume=auto"]
    )
