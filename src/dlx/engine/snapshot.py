"""A trainer's checkpoint: what it holds (`snapshot`) and putting it back (`restore`).

Under DDP every process calls `snapshot` (their RNG streams and running sums differ once an
uneven last batch has drawn fewer dropout masks on some) and rank 0 writes it with every
rank's own state, so a resume on the same number of processes restores each one's exactly,
and one on another number continues from the totals.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch

from dlx.core.errors import ConfigError
from dlx.core.preprocessing import describe
from dlx.engine.checkpoint import (
    FORMAT,
    CheckpointError,
    dlx_version,
    kept_checkpoint,
    load_checkpoint,
    load_model_state,
    rng_state,
    set_rng_state,
)
from dlx.engine.parts.nan_guard import Diverged
from dlx.engine.resume import resume_path

if TYPE_CHECKING:
    from pathlib import Path

    from dlx.engine.parts import Loop

log = logging.getLogger("dlx")


def snapshot(trainer: Loop) -> dict[str, Any] | None:
    """The checkpoint of this moment (on rank 0; None on the others)."""
    s = trainer.state
    check_finite_weights(trainer)
    state, rng, ranks = s.state_dict(), rng_state(), None
    if trainer.dist.world > 1:
        mine = {"rng": rng, "sums": state["sums"], "seen": s.seen}
        ranks = [None] * trainer.dist.world
        torch.distributed.all_gather_object(ranks, mine)
        if state["sums"] is not None:  # the totals, for a resume on another world size
            state["sums"] = sum(r["sums"] for r in ranks)
            state["seen"] = sum(r["seen"] for r in ranks)
    if not trainer.dist.main:
        return None
    return {
        "format": FORMAT,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scaler": None if trainer.scaler is None else trainer.scaler.state_dict(),
        "epoch": s.epoch,  # also in `state`: here for readers that want only these
        "step": s.step,
        "state": state,
        "batches": trainer.batches.state_dict(),
        "parts": trainer.parts.state_dict(),
        "rng": rng,
        "ranks": ranks,
        "config": trainer.config or {},
        "data": describe(trainer.data),  # classes and preprocessing: dlx predict's needs
        "dlx_version": dlx_version(),
    }


def check_finite_weights(trainer: Loop) -> None:
    """A checkpoint never holds weights a resume would diverge from: an optimizer step can
    leave NaN weights behind a loss that was still finite."""
    floats = [t for t in trainer.model.state_dict().values() if t.is_floating_point()]
    if floats and not bool(torch.stack([t.isfinite().all() for t in floats]).all()):
        raise Diverged(
            f"the weights became non-finite at step {trainer.state.step}; training stopped, "
            f"{kept_checkpoint(trainer)}; try a lower optimizer.lr or trainer.gradient_clip_val"
        )


def resume(trainer: Loop) -> None:
    """Restore the checkpoint `trainer.resume` names (auto: the run's last.pt), if any."""
    path = resume_path(trainer.cfg.resume, trainer.checkpoint_path())
    if path is not None:
        restore(trainer, path)
        s = trainer.state
        at = f"epoch {s.epoch + 1}, batch {s.batch} (step {s.step})"
        log.info("resumed from %s at %s", path, at)
    elif trainer.cfg.resume == "auto":
        log.info("trainer.resume=auto: no checkpoint in the run dir yet; starting fresh")


def restore(trainer: Loop, path: Path) -> None:
    """Put a checkpoint's states back into a trainer that has been set up."""
    ckpt = load_checkpoint(path, map_location=trainer.device)
    load_model_state(trainer.model, ckpt["model"], path)
    if "optimizer" not in ckpt:
        raise CheckpointError(
            f"checkpoint {path} holds weights only (no optimizer state), so a run cannot "
            f"resume from it; start from its weights with model.init_from={path}"
        )
    if ckpt.get("format") != FORMAT or "state" not in ckpt:
        raise CheckpointError(
            f"checkpoint {path} was written by an older dlx (format {ckpt.get('format')}), "
            f"whose loop state this one cannot continue; start a new run from its weights "
            f"with model.init_from={path}"
        )
    try:
        trainer.optimizer.load_state_dict(ckpt["optimizer"])
        if trainer.scaler is not None and ckpt.get("scaler") is not None:
            trainer.scaler.load_state_dict(ckpt["scaler"])
    except (ValueError, KeyError, RuntimeError) as err:
        raise ConfigError(
            f"checkpoint {path} was saved with another optimizer set-up "
            f"({str(err).splitlines()[0]}); resume with the options it was trained with"
        ) from None
    try:
        trainer.state.load_state_dict(ckpt["state"], trainer.device)
        trainer.batches.load_state_dict(ckpt["batches"])
        trainer.parts.load_state_dict(ckpt["parts"])
        _restore_rng(trainer, ckpt)
        _apply_allowed_changes(trainer, ckpt.get("config") or {})
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError) as err:
        # load_checkpoint checked the entries' types; this is their inside (a hand-made
        # file): refused in one line rather than a traceback.
        raise CheckpointError(
            f"checkpoint {path} is not a complete dlx checkpoint (its run state does not "
            f"read: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
            "resume from another one, or start from its weights with model.init_from"
        ) from None


def _apply_allowed_changes(trainer: Loop, stored: dict[str, Any]) -> None:
    """trainer.resume_allow_changes: the new optimizer values, over the checkpoint's state
    (which holds the old ones in its param groups and the scheduler's base values)."""
    new = trainer.config or {}
    for key in trainer.cfg.resume_allow_changes:
        group, _, name = key.partition(".")
        if group != "optimizer" or name not in new.get("optimizer", {}):
            continue
        value = new["optimizer"][name]
        value = tuple(value) if isinstance(value, list) else value
        old = stored.get("optimizer", {}).get(name)
        for params in trainer.optimizer.param_groups:
            if name in params:
                params[name] = value
        if name == "lr":
            for part in trainer.parts:
                scheduler = getattr(part, "scheduler", None)
                if scheduler is not None and hasattr(scheduler, "base_lrs"):
                    scheduler.base_lrs = [value for _ in scheduler.base_lrs]
        if old != new["optimizer"][name]:
            log.info("resume: %s %s -> %s (trainer.resume_allow_changes)", key, old, value)


def _restore_rng(trainer: Loop, ckpt: dict[str, Any]) -> None:
    s, dist = trainer.state, trainer.dist
    ranks = ckpt.get("ranks")
    if ranks is not None and len(ranks) == dist.world:  # DDP, same world: its own
        own = ranks[dist.rank]
        set_rng_state(own["rng"])
        s.sums = None if own["sums"] is None else own["sums"].to(trainer.device)
        s.seen = own["seen"]
        return
    set_rng_state(ckpt["rng"])
    if not dist.main and s.sums is not None:  # rank 0 carries the saved totals
        s.sums.zero_()
        s.seen = 0
