"""`dlx train`: compose the config, build data, model, task and optimizer, run the trainer."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from dlx import guard as _guard
from dlx.compose import COMPOSE_ERRORS, as_config_error
from dlx.config import check_run, register_configs
from dlx.errors import ConfigError, DlxError, fail, fail_on_write_fault, reports_errors

log = logging.getLogger("dlx")
# Before Hydra composes anything here, also in a launcher's worker process (joblib,
# submitit), which imports this module to run a job: every config is checked.
_guard.install()


def run(cfg: DictConfig, run_dir: Path | None, resume_hint: str = "") -> dict[str, Any]:
    """Run what `cfg` says and write metrics.json into run_dir.

    With `stages` (a list of {name, groups, overrides}), each stage runs in turn in
    `<run_dir>/<n>_<name>/` on the config with its `groups` swapped (e.g. {optimizer: adam})
    and its `overrides` merged in; `model.init_from: previous` starts a stage from the one
    before. Metrics come back prefixed by stage name.
    """
    from dlx.console import extra, print_config_tree, print_final_table
    from dlx.engine.resume import check_resume
    from dlx.io import write_json

    if extra(cfg, "print_config"):
        print_config_tree(cfg)
    t0 = time.perf_counter()
    if not cfg.get("stages"):
        check_resume(cfg, run_dir)  # before anything is written (DDP's workers included)
        metrics = run_one(cfg, run_dir, resume_hint)
    else:
        stages = stage_runs(cfg, run_dir)
        for _, stage_cfg, stage_dir in stages:  # every stage, before the first one runs
            check_resume(stage_cfg, stage_dir)
        metrics = {}
        for i, (name, stage_cfg, stage_dir) in enumerate(stages, 1):
            log.info("stage %d/%d: %s", i, len(stages), name)
            result = run_one(stage_cfg, stage_dir, resume_hint)
            metrics.update({f"{name}/{k}": v for k, v in result.items()})
        metrics.update(result)  # the last stage's metrics also at the top level
    metrics["wall_time_s"] = time.perf_counter() - t0
    if run_dir is not None and _is_main():
        write_json(metrics, run_dir / "metrics.json")
    summary = "  ".join(
        f"{k} {v:.4f}" for k, v in metrics.items() if k.endswith(("test/acc", "test/loss"))
    )
    log.info("done: %s  ->  %s", summary or "trained", run_dir or "(no run dir)")
    if extra(cfg, "final_table"):
        print_final_table(metrics, run_dir)
    return metrics


def stage_runs(cfg: DictConfig, run_dir: Path | None) -> list[tuple[str, DictConfig, Path | None]]:
    """(name, config, run dir) of each of `cfg.stages`: the config with the stage's `groups`
    swapped and its `overrides` merged in, `model.init_from: previous` made a path."""
    from dlx.compose import compose

    base = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "stages"])
    runs, previous = [], None
    for i, stage in enumerate(cfg.stages, 1):
        name = stage.get("name") or f"stage{i}"
        stage_cfg = base.copy()
        for group, option in (stage.get("groups") or {}).items():
            stage_cfg[group] = compose("train", [f"{group}={option}"])[group]
        stage_cfg = OmegaConf.merge(stage_cfg, stage.get("overrides") or {})
        if stage_cfg.model.get("init_from") == "previous":
            if previous is None:
                raise ConfigError(f"stage {name}: model.init_from=previous in the first stage")
            stage_cfg.model.init_from = str(previous)
        stage_dir = None if run_dir is None else run_dir / f"{i}_{name}"
        runs.append((name, stage_cfg, stage_dir))
        previous = None if stage_dir is None else stage_dir / "checkpoints" / "last.pt"
    return runs


def run_one(cfg: DictConfig, run_dir: Path | None, resume_hint: str = "") -> dict[str, Any]:
    """One training run: data, model, then the torch trainer or the model's own runner."""
    import torch

    from dlx.engine.runtime import seed_everything
    from dlx.models import build_model
    from dlx.observe import Observer
    from dlx.targets import instantiate

    check_run(cfg)
    if cfg.trainer.devices > 1 and not torch.distributed.is_initialized():
        # trainer.devices=N: N worker processes each run this function in one process group,
        # inside this Hydra job and its one run dir (engine/distributed.py).
        from dlx.engine import distributed

        return distributed.spawn(
            run_one, (cfg, run_dir, resume_hint), cfg.trainer.devices, cfg.trainer.accelerator
        )
    seed_everything(cfg.seed, deterministic=cfg.trainer.deterministic)
    data, name = None, "none"
    if cfg.get("dataset") is not None:
        dataset = instantiate(cfg.dataset, "dataset")
        data, name = dataset.load(), dataset.name
    model = build_model(cfg.model, None if data is None else data.spec)
    # Loggers, console and figures: the Observer closes the loggers however the run ends.
    with Observer(cfg, run_dir) as observer:
        if isinstance(model, torch.nn.Module):
            if data is None:
                raise ConfigError(f"model {type(model).__name__} needs a dataset (dataset=...)")
            metrics = train_torch(cfg, model, data, name, run_dir, resume_hint, observer)
        elif cfg.trainer.devices > 1 or torch.distributed.is_initialized():
            raise ConfigError(
                f"{type(model).__name__} is not a torch model: it runs in one process "
                "(leave trainer.devices at 1, no torchrun)"
            )
        elif callable(getattr(model, "run", None)):  # a Runner: scikit-learn, Q-learning
            metrics = model.run(data=data, cfg=cfg, run_dir=run_dir)
        else:
            raise ConfigError(
                f"model._target_ built a {type(model).__name__}: neither a torch module nor a "
                "runner"
            )
        observer.finish(metrics, model=model, data=data)
    return metrics


def train_torch(
    cfg: DictConfig,
    model: Any,
    data: Any,
    dataset_name: str,
    run_dir: Path | None,
    resume_hint: str,
    observer: Any = None,
) -> dict[str, Any]:
    from dlx.engine import lazy_dynamo
    from dlx.engine.schedule import Schedule
    from dlx.engine.trainer import Trainer
    from dlx.engine.transfer import freeze, init_from
    from dlx.targets import instantiate

    lazy_dynamo.defer()  # torch.optim would import it (1-2 s) for nothing in an eager run
    trainer = Trainer(
        **cfg.trainer,
        early_stopping=OmegaConf.to_container(cfg.callbacks.early_stopping),
        run_dir=run_dir,
        seed=cfg.seed,
        resume_hint=resume_hint,
        logger=(observer.loggers or None) if observer is not None else None,
    )
    if cfg.model.get("init_from"):
        init_from(model, cfg.model.init_from)
    if cfg.model.get("freeze"):
        freeze(model, list(cfg.model.freeze))
    model.to(trainer.device)
    task = instantiate(cfg.task, "task")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = instantiate(cfg.optimizer, "optimizer", params=params)
    sched = cfg.scheduler
    factory = (
        instantiate(sched.lr_scheduler, "scheduler.lr_scheduler", partial=True)
        if sched.lr_scheduler
        else None
    )
    log.info(
        "dlx train: model=%s dataset=%s (%d train / %s val / %s test) on %s, precision %s",
        type(model).__name__,
        dataset_name,
        len(data.train),
        len(data.val) if data.val is not None else 0,
        len(data.test) if data.test is not None else 0,
        trainer.device,
        trainer.precision,
    )
    if observer is not None:
        observer.start(model, data, dataset_name)
    config = OmegaConf.to_container(cfg, resolve=True)
    return trainer.fit(
        model,
        optimizer,
        task,
        data,
        config=config,  # type: ignore[arg-type]
        schedule=Schedule(factory, sched.interval, sched.monitor),
    )


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
@reports_errors
def _hydra_main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from dlx.sweep import objective, run_job

    _job_started()
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    if _torchrun():  # rank 0: the other ranks use this run dir and create none
        from dlx.engine.distributed import share_run_dir

        share_run_dir(str(run_dir))
    # What to type to continue this run after a preemption.
    kept = [o for o in hc.overrides.task if not o.startswith(("trainer.resume=", "hydra.run.dir="))]
    words = ["dlx", "train", *kept, f"hydra.run.dir={run_dir}", "trainer.resume=auto"]
    hint = shlex.join(words)  # to paste into a shell: a run dir may hold spaces
    if hc.mode == RunMode.MULTIRUN:
        # One job of a sweep: a failure is recorded and the sweep goes on (a DlxError would
        # otherwise end in SystemExit and take the whole multirun down with it). Returns the
        # monitored metric, the value a sweeper (Optuna) optimises.
        return run_job(cfg, hc, lambda: run(cfg, run_dir, resume_hint=hint))
    return objective(run(cfg, run_dir, resume_hint=hint))[1]


def check(cfg: DictConfig, run_dir: str | Path) -> None:
    """What can be checked before the run dir exists: values, then the objects the targets
    name (which imports their modules: torch), then the run dir. Hydra's own targets and
    the config's shape were checked as Hydra composed it (dlx/guard.py)."""
    check_run(cfg)
    _guard.check_config(cfg)
    check_writable(Path(run_dir).expanduser())


class RunChecks(Callback):
    """Hydra callback (configs/hydra/default.yaml): `check` a run before Hydra creates its
    run dir. A bad value ends the command in one line; SystemExit, since Hydra turns a
    callback's exceptions into warnings."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        job = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
        reports_errors(check)(job, config.hydra.run.dir)


# Set while a plain run composes (see _one_line_errors); the job clears it on entry.
_FULL_ERROR = "HYDRA_FULL_ERROR"
_set_full_error = False


def _job_started() -> None:
    global _set_full_error
    if _set_full_error:
        os.environ.pop(_FULL_ERROR, None)
        _set_full_error = False


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """A plain run's composition errors as one line ("error: ..."), not Hydra's report.

    HYDRA_FULL_ERROR makes Hydra re-raise what it would print, here to be put in one line.
    The job unsets it as it starts, so an error inside the job gets Hydra's usual report.
    """
    global _set_full_error
    _set_full_error = _FULL_ERROR not in os.environ
    if _set_full_error:
        os.environ[_FULL_ERROR] = "1"
    try:
        yield
    except DlxError as err:
        fail(str(err), err.exit_code)
    except COMPOSE_ERRORS as err:
        err = as_config_error(err)
        fail(str(err), err.exit_code)
    except OSError as err:  # Hydra writing .hydra/ onto a full or read-only disk
        fail_on_write_fault(err)
    finally:
        _job_started()


def check_writable(path: Path) -> None:
    """Fail early, in one line, when the run dir cannot be created or written.

    It is really tried: the folder is made (as Hydra or `dlx eval` would next) and a file
    opened in it. Asking os.access is not enough: as root it says yes to /proc.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        raise ConfigError(
            f"cannot write the run dir {path}: {probe} is not a writable folder "
            f"({err.strerror or err}); set hydra.run.dir (or DLX_OUTPUT_DIR) to a writable place"
        ) from None


def _is_main() -> bool:
    # Only rank 0 of a process group writes files; torch is imported by then.
    dist = sys.modules.get("torch.distributed")
    return dist is None or not dist.is_initialized() or dist.get_rank() == 0


def _torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "MASTER_ADDR" in os.environ


@reports_errors
def _join_torchrun(argv: list[str]) -> int:
    """Under torchrun: join the process group before Hydra starts; returns the rank."""
    from dlx.compose import compose
    from dlx.engine import distributed

    if any(a in ("-m", "--multirun") for a in argv):
        raise ConfigError("sweeps (-m) do not run under torchrun; use trainer.devices=N in them")
    cfg = compose("train", argv)  # and checks what Hydra builds (dlx/guard.py)
    # Every rank fails on a bad value by itself (before waiting on the others); the run
    # dir, which only rank 0 writes, is checked by RunChecks there.
    check_run(cfg)
    _guard.check_config(cfg)
    return distributed.init_torchrun(cfg.trainer.accelerator).rank


@reports_errors
def _follow(argv: list[str]) -> None:
    """Ranks > 0 under torchrun: rank 0's run dir and the same config, without Hydra (so
    no second run dir, .hydra/ or log file); the trainer writes nothing on these ranks."""
    from dlx.compose import compose
    from dlx.engine.distributed import share_run_dir

    run_dir = Path(share_run_dir(None))
    run(compose("train", argv), run_dir)


def _help() -> None:
    """Hydra's help without the `schema` groups, which type the others and are not options."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            _hydra_main()
    finally:
        text = re.sub(r"(?m)^schema(/\w+)?: .*\n", "", out.getvalue())
        sys.stdout.write(text)


def main(argv: list[str]) -> None:
    from dlx import guard, sweep

    register_configs()
    reports_errors(guard.check_argv)(argv)
    guard.install(cli=True)
    guard.inspect_only(argv)
    reports_errors(sweep.check_plugins)(argv)
    torchrun = _torchrun()
    if torchrun and _join_torchrun(argv) > 0:
        _follow(argv)
        _leave_torchrun()
        return
    sys.argv = ["dlx train", *argv]
    if "--help" in argv or "-h" in argv:
        _help()
        return
    # A plain run reports a bad override in one line. Sweeps (-m, hparams_search=) and
    # Hydra's own flags (--cfg, --info) keep Hydra's report.
    plain = not any(a.startswith("-") for a in argv) and not sweep.is_search(argv)
    try:
        with _one_line_errors() if plain else contextlib.nullcontext():
            _hydra_main()
    finally:
        problem = sweep.finish()  # after a multirun: its summary, even if the sweeper gave up
    if problem:
        fail(problem, 1)  # exit 1 when a job failed; the summary is written by then
    if torchrun:
        _leave_torchrun()


def _leave_torchrun() -> None:
    from dlx.engine.distributed import leave_torchrun

    leave_torchrun()
