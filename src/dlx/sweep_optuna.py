"""Optuna searches (`hparams_search=...`, hydra/sweeper=optuna): the checks before the first
trial, and a search that resumes.

`sweep.resume=true` with the previous search's `hydra.sweep.dir`: the trials it recorded
(each job's `job_status.json` holds the overrides Optuna sampled) are put first in the new
study's queue, in job order, with the same parameters. So trial n is job n again: a finished
one is not run but told to the study with its recorded value (dlx/sweep_resume.py skips it),
an unfinished one continues from its last.pt, and the study then samples on from all of
them, up to `n_trials` in all. What cannot be replayed so is refused in one line: a study
in a database (it holds its trials already), a custom search space, several objectives, or
a recorded trial that is not a point of this search space.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dlx.core.errors import ConfigError, DlxError, fail

log = logging.getLogger("dlx")

# The sweep dir whose trials the next Optuna sweep replays (set per multirun).
_resume: dict[str, Any] = {"dir": None}


def prepare(config: DictConfig, resume: Path | None) -> None:
    """Before the first trial: refuse a database optuna cannot use, quiet optuna, and have
    a resumed search replay the trials of `resume` (its sweep dir)."""
    sweeper = config.hydra.sweeper
    _check_storage(sweeper.get("storage"))
    if resume is not None and sweeper.get("storage"):
        fail(
            "sweep.resume=true with hydra.sweeper.storage: the study's database holds its "
            "trials already; resume it without sweep.resume, in a new hydra.sweep.dir"
        )
    _quiet()
    _resume["dir"] = resume
    if resume is not None:
        _install()


def _check_storage(storage: Any) -> None:
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
        fail(
            f"hydra.sweeper.storage={storage}: optuna {optuna} cannot use a database with "
            f"SQLAlchemy {sqlalchemy}; pip install 'sqlalchemy<2', or leave the storage null "
            "(the study lives in memory)"
        )


def _quiet() -> None:
    """optuna's INFO lines, and the deprecation warnings SQLAlchemy 2 gives at its import, are
    noise here: the launcher prints each trial's overrides and the summary their results."""
    import warnings

    # optuna imports alembic, whose INFO lines ("setup plugin ...") Hydra's logging would show.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


# --- a search that resumes -------------------------------------------------------------------


def _install() -> None:
    from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl

    if getattr(OptunaSweeperImpl.sweep, "_dlx_resume", False):
        return
    original = OptunaSweeperImpl.sweep

    @functools.wraps(original)
    def sweep(self: Any, arguments: list[str]) -> Any:
        if _resume["dir"] is None:
            return original(self, arguments)
        try:
            queued = recorded_trials(self, arguments, Path(_resume["dir"]))
        except DlxError as err:
            fail(str(err), err.exit_code)
        import optuna

        create_study = optuna.create_study

        def replaying(*args: Any, **kwargs: Any) -> Any:
            study = create_study(*args, **kwargs)
            for params in queued:
                study.enqueue_trial(params)
            return study

        log.info("resuming the search: %d recorded trials first", len(queued))
        optuna.create_study = replaying
        try:
            return original(self, arguments)
        finally:
            optuna.create_study = create_study

    sweep._dlx_resume = True  # type: ignore[attr-defined]
    OptunaSweeperImpl.sweep = sweep


def recorded_trials(sweeper: Any, arguments: list[str], sweep_dir: Path) -> list[dict[str, Any]]:
    """The parameters of each job the earlier search recorded in sweep_dir, in job order,
    typed as this search's distributions take them."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

    from dlx.sweep_resume import previous_jobs

    jobs = previous_jobs(sweep_dir)
    if not jobs:
        return []
    where = f"cannot resume the search in {sweep_dir}"
    if sweeper.custom_search_space_extender is not None:
        raise ConfigError(f"{where}: its custom_search_space cannot be replayed")
    if len(sweeper._get_directions()) > 1:
        raise ConfigError(f"{where}: a study of several objectives cannot be replayed")
    if sorted(jobs) != list(range(len(jobs))):
        missing = min(set(range(max(jobs) + 1)) - set(jobs))
        raise ConfigError(f"{where}: job {missing} left no job_status.json")
    sweeper._process_searchspace_config()
    space, fixed = create_params_from_overrides(
        sweeper._parse_sweeper_params_config() + list(arguments)
    )
    space = {**(sweeper.search_space_distributions or {}), **space}
    space = {k: v for k, v in space.items() if k not in fixed}
    queued = []
    for num in sorted(jobs):
        texts = dict(o.lstrip("+").split("=", 1) for o in jobs[num]["overrides"] if "=" in o)
        params = {}
        for name, distribution in space.items():
            value = _decode(distribution, texts.get(name))
            if value is None:
                raise ConfigError(
                    f"{where}: job {num} ran {name}={texts.get(name)}, which is not in this "
                    "search space; resume with the same search, or give a new hydra.sweep.dir"
                )
            params[name] = value
        queued.append(params)
    return queued


def _decode(distribution: Any, text: str | None) -> Any:
    """The value of a distribution that Optuna's sweeper wrote as `text` (None: none)."""
    from optuna.distributions import CategoricalDistribution

    if text is None:
        return None
    if isinstance(distribution, CategoricalDistribution):
        return next((c for c in distribution.choices if str(c) == text), None)
    integer = "Int" in type(distribution).__name__
    try:
        value: Any = int(text) if integer else float(text)
        inside = distribution._contains(distribution.to_internal_repr(value))
    except (TypeError, ValueError):
        return None
    return value if inside else None
