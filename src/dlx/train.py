"""`dlx train`: compose the config, build data, model, task and optimizer, run the trainer."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dlx import guard as _guard
from dlx import sweep_resume as _sweep_resume
from dlx.command import (
    check,
    install,
    job_started,
    one_line_errors,
    print_help,
)
from dlx.core.checks import check_values, has_dataset
from dlx.core.errors import ConfigError, DlxError, Interrupted, fail, reports_errors
from dlx.core.io import is_main_process, remove_stale_temps, write_json

log = logging.getLogger("dlx")
# Before Hydra composes anything here, also in a launcher's worker process (joblib,
# submitit), which imports this module to run a job: every config is checked, and a
# resumed sweep's job is looked up in the sweep dir before Hydra writes into it.
_guard.install()
_sweep_resume.install()


class Stopped(DlxError):
    """A signal outside the training loop (start-up, test pass, figures): 128 + signum."""


def run(
    cfg: DictConfig,
    run_dir: Path | None,
    resume_hint: str = "",
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Run what `cfg` says and write metrics.json into run_dir; `overrides` is the command
    line that composed `cfg` (what it pins over a staged run's stage settings)."""
    from dlx.console import extra, print_config_tree, print_final_table
    from dlx.engine.resume import check_resume
    from dlx.stages import stage_runs

    if extra(cfg, "print_config"):
        print_config_tree(cfg)
    t0 = time.perf_counter()
    phase = ["start-up"]
    try:
        if not cfg.get("stages"):
            check_resume(cfg, run_dir)  # before anything is written (DDP's workers included)
            metrics = run_one(cfg, run_dir, resume_hint, phase)
        else:
            stages = stage_runs(cfg, run_dir, overrides)
            for _, stage_cfg, stage_dir in stages:  # every stage, before the first one runs
                check_resume(stage_cfg, stage_dir)
            metrics = {}
            for i, (name, stage_cfg, stage_dir) in enumerate(stages, 1):
                log.info("stage %d/%d: %s", i, len(stages), name)
                result = run_one(stage_cfg, stage_dir, resume_hint, phase)
                metrics.update({f"{name}/{k}": v for k, v in result.items()})
            metrics.update(result)  # the last stage's metrics also at the top level
        metrics["wall_time_s"] = time.perf_counter() - t0
        if run_dir is not None and is_main_process():
            write_json(metrics, run_dir / "metrics.json")
    except Interrupted as err:
        raise _stopped(err, phase[0], run_dir, resume_hint) from None
    summary = "  ".join(
        f"{k} {v:.4f}" for k, v in metrics.items() if k.endswith(("test/acc", "test/loss"))
    )
    log.info("done: %s  ->  %s", summary or "trained", run_dir or "(no run dir)")
    if extra(cfg, "final_table"):
        print_final_table(metrics, run_dir)
    return metrics


def _stopped(err: Interrupted, phase: str, run_dir: Path | None, hint: str) -> Stopped:
    import signal

    name = signal.Signals(err.signum).name
    saved = sorted(run_dir.glob("**/checkpoints/last.pt")) if run_dir is not None else []
    if saved:
        what = f"saved {saved[-1]}"
        if hint:
            what += f"; resume with: {hint}"
    else:
        what = "nothing was saved yet" + (f"; start it again: {hint}" if hint else "")
    stopped = Stopped(f"stopped by {name} during {phase}; {what}")
    stopped.exit_code = 128 + err.signum
    return stopped


def run_one(
    cfg: DictConfig, run_dir: Path | None, resume_hint: str = "", phase: list[str] | None = None
) -> dict[str, Any]:
    """One training run: data, model, then the torch trainer or the model's own runner."""
    import torch

    from dlx.core.targets import instantiate
    from dlx.engine import faults
    from dlx.engine.runtime import busy_cpu_note, seed_everything, set_threads
    from dlx.fit import train_torch
    from dlx.models import build_model
    from dlx.observe import Observer

    phase = phase if phase is not None else ["start-up"]
    check_values(cfg)
    if cfg.trainer.devices > 1 and not torch.distributed.is_initialized():
        # trainer.devices=N: N worker processes each run this function in one process group,
        # inside this Hydra job and its one run dir (engine/launch.py).
        from dlx.engine.launch import spawn

        trainer = cfg.trainer
        args = (cfg, run_dir, resume_hint)
        return spawn(run_one, args, trainer.devices, trainer.accelerator, trainer.stall_timeout_s)
    if run_dir is not None and is_main_process():
        for folder in (run_dir, run_dir / "checkpoints"):  # a killed write's leftovers
            remove_stale_temps(folder)
    seed_everything(cfg.seed, deterministic=cfg.trainer.deterministic)
    if not torch.distributed.is_initialized():  # (DDP workers got their share already)
        threads = set_threads(cfg.trainer.num_threads, parallel_jobs())
        note = busy_cpu_note(threads) if cfg.trainer.num_threads is None else None
        if note:
            log.warning(note)
    data, name = None, "none"
    if has_dataset(cfg):
        dataset = instantiate(cfg.dataset, "dataset")
        data, name = dataset.load(), dataset.name
    model = build_model(cfg.model, None if data is None else data.spec)
    # Loggers, console and figures: the Observer closes the loggers however the run ends.
    with Observer(cfg, run_dir) as observer:
        phase[0] = "training"
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
        if run_dir is not None and is_main_process():  # the result first, then decorations
            write_json(metrics, run_dir / "metrics.json")
        phase[0] = "the figures and loggers"
        if faults.ENABLED:
            faults.reach("figures")
        observer.finish(metrics, model=model, data=data)
    return metrics


# -- the Hydra side ---------------------------------------------------------------------------


def _task(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from dlx.sweep import SweepStopped, objective, run_job

    job_started()
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    if _torchrun():  # rank 0: the other ranks use this run dir and create none
        from dlx.engine.torchrun import share_run_dir

        share_run_dir(str(run_dir))
    overrides = list(hc.overrides.task)
    # What to type to continue this run after a preemption (shell-quoted: a run dir may
    # hold spaces); a sweep's job alone, as a single run.
    hint = _sweep_resume.job_command(overrides, run_dir, hc.mode == RunMode.MULTIRUN)
    if hc.mode == RunMode.MULTIRUN:
        # One job of a sweep: a failure is recorded and the sweep goes on (a DlxError would
        # otherwise end in SystemExit and take the whole multirun down with it). Returns the
        # monitored metric, the value a sweeper (Optuna) optimises. A signal stops the sweep.
        try:
            return run_job(cfg, hc, lambda: run(cfg, run_dir, hint, overrides))
        except DlxError as err:
            if err.exit_code <= 128:
                raise
            line = str(err).split("; resume with: ")[0]
            raise SweepStopped(f"{line} (job {hc.job.num})", err.exit_code) from None
    return objective(run(cfg, run_dir, hint, overrides))[1]


def parallel_jobs() -> int:
    """How many jobs of this sweep run at once on this machine (joblib's n_jobs), else 1."""
    try:
        from hydra.core.hydra_config import HydraConfig

        launcher = HydraConfig.get().launcher
    except ValueError:  # not inside a Hydra job
        return 1
    if "joblib" not in str(launcher.get("_target_", "")):
        return 1
    n = launcher.get("n_jobs")
    from dlx.engine.runtime import cores

    return cores() if n in (None, -1) else max(1, int(n))


def _signal_name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name


def _torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "MASTER_ADDR" in os.environ


@reports_errors
def _join_torchrun(argv: list[str]) -> int:
    """Under torchrun: join the process group before Hydra starts; returns the rank."""
    from dlx.compose import compose
    from dlx.engine.torchrun import init_torchrun

    if any(a in ("-m", "--multirun") for a in argv):
        raise ConfigError("sweeps (-m) do not run under torchrun; use trainer.devices=N in them")
    cfg = compose("train", argv)  # and checks what Hydra builds (dlx/guard.py)
    # Every rank fails on a bad value by itself (before waiting on the others); the run
    # dir, which only rank 0 writes, is checked by RunChecks there.
    check(cfg, None)
    return init_torchrun(cfg.trainer.accelerator).rank


@reports_errors
def _follow(argv: list[str]) -> None:
    """Ranks > 0 under torchrun: rank 0's run dir and the same config, without Hydra (so
    no second run dir, .hydra/ or log file); the trainer writes nothing on these ranks."""
    from dlx.compose import compose
    from dlx.engine.torchrun import share_run_dir

    run_dir = Path(share_run_dir(None))
    run(compose("train", argv), run_dir, overrides=argv)


def main(argv: list[str]) -> None:
    import hydra

    from dlx import sweep, sweep_plugins

    install(argv)
    reports_errors(sweep_plugins.check_plugins)(argv)
    torchrun = _torchrun()
    if torchrun and _join_torchrun(argv) > 0:
        _follow(argv)
        _leave_torchrun()
        return
    hydra_main = hydra.main(config_path="configs", config_name="train", version_base="1.3")(
        reports_errors(_task)
    )
    sys.argv = ["dlx train", *argv]
    if "--help" in argv or "-h" in argv:
        print_help(hydra_main, "train")
        return
    # A plain run reports a bad override in one line. Sweeps (-m, hparams_search=) and
    # Hydra's own flags (--cfg, --info) keep Hydra's report.
    plain = not any(a.startswith("-") for a in argv) and not sweep_plugins.is_search(argv)
    stopped: sweep.SweepStopped | None = None
    try:
        if plain:
            with one_line_errors():
                hydra_main()
        else:
            hydra_main()
    except sweep.SweepStopped as err:
        stopped = err
    except KeyboardInterrupt as err:  # a signal between two jobs
        if sweep.active_dir() is None:
            raise
        signum = getattr(err, "signum", 2)
        stopped = sweep.SweepStopped(f"stopped by {_signal_name(signum)}", 128 + signum)
    finally:
        problem = sweep.finish()  # after a multirun: its summary, even if the sweeper gave up
    if stopped is not None:  # the summary lists the jobs not started; one line to go on
        again = _sweep_resume.resume_command(argv, sweep.active_dir())  # type: ignore[arg-type]
        fail(f"{stopped}; resume the sweep with: {again}", stopped.exit_code)
    if problem:
        fail(problem, 1)  # exit 1 when a job failed; the summary is written by then
    if torchrun:
        _leave_torchrun()


def _leave_torchrun() -> None:
    from dlx.engine.torchrun import leave_torchrun

    leave_torchrun()
