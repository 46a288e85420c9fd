"""The one training loop for every torch model.

`fit` reads top to bottom: epochs of batches, a step each, the epoch's metrics, and the
parts (engine/parts/) called at named points for everything else: checkpoints, the NaN
guard, the learning-rate schedule, early stopping, loggers, progress, preemption. The run's
state is one dataclass (engine/state.py), checkpointed with every part's state, the data
order and every RNG, so a killed run resumes bit for bit.

Metrics are summed on the device and read once an epoch, the losses every
`log_every_n_steps` steps (the NaN guard): no host sync per step. Under DDP the same loop
runs in every process (engine/group.py, launch.py); only rank 0 writes files."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlx.core.data import AnySplit, Data
from dlx.core.errors import Interrupted
from dlx.core.schemas import TrainerConfig
from dlx.core.tasks import Task
from dlx.engine import faults
from dlx.engine.batches import make_batches
from dlx.engine.checkpoint import save_checkpoint
from dlx.engine.evaluation import evaluate
from dlx.engine.group import DONE, AgreedStop, beat, check_group, current, wrap
from dlx.engine.parts import Part, Parts
from dlx.engine.parts.builtin import builtin_parts
from dlx.engine.parts.monitor import monitor_for
from dlx.engine.parts.nan_guard import NanGuard
from dlx.engine.parts.preemption import stopped_after_training
from dlx.engine.report import final_metrics
from dlx.engine.runtime import (
    autocast_for,
    configure_backends,
    keep_freed_memory,
    loop_threads,
    process_age,
    resolve_device,
)
from dlx.engine.schedule import Schedule
from dlx.engine.signals import StopRequest
from dlx.engine.snapshot import resume, snapshot
from dlx.engine.state import RunState
from dlx.engine.warmup import compile_warm_up

log = logging.getLogger("dlx")


class Trainer:
    """`Trainer(TrainerConfig(...))`, or `Trainer(max_epochs=3, ...)` for the same fields."""

    def __init__(
        self,
        cfg: TrainerConfig | None = None,
        *,
        callbacks: Sequence[Part] = (),
        run_dir: str | Path | None = None,
        seed: int = 0,
        config: dict[str, Any] | None = None,
        resume_hint: str = "",
        **options: Any,
    ) -> None:
        cfg = cfg or TrainerConfig()
        self.cfg = dataclasses.replace(cfg, **options) if options else cfg  # checked again
        self.callbacks = list(callbacks)  # the config's parts, in its order
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.seed, self.config, self.resume_hint = seed, config, resume_hint
        self.device = resolve_device(self.cfg.accelerator)
        self.autocast = autocast_for(self.cfg.precision, self.device)
        self.dist = current()
        self.device = check_group(self.cfg, self.dist, self.device)
        self.state = RunState()
        self.stop: Any = None  # the stop request (a signal), while fit runs
        self.boundary = False  # whether the last step ended with an optimizer step
        self.startup_s: float | None = None  # process start -> end of the first step
        self.compile_time_s: float | None = None
        self.extra_metrics: dict[str, Any] = {}  # what parts add to the final metrics
        self.predictions: dict[str, Any] = {}  # a split's predicted classes (evaluate(keep=))
        self._saved: dict[str, tuple[int, int, int]] = {}

    def fit(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        task: Task,
        data: Data,
        schedule: Schedule | None = None,
    ) -> dict[str, Any]:
        """Train for max_epochs, validating each epoch; test at the end. Returns metrics."""
        self.setup(model, optimizer, task, data, schedule)
        state, parts, cfg = self.state, self.parts, self.cfg
        with self.running():
            parts.on_fit_start(self)
            while state.epoch < cfg.max_epochs and not state.should_stop:
                self.start_epoch()
                parts.on_train_epoch_start(self)
                for x, y, weight in self.batches.epoch(state):
                    loss = self.step(x, y, weight)
                    parts.on_train_batch_end(self, loss)
                parts.on_train_epoch_end(self, self.end_epoch())
            parts.on_fit_end(self)
        try:
            if faults.ENABLED:
                faults.reach("test")
            metrics = final_metrics(self)  # the test pass
        except Interrupted as err:  # a signal, outside the loop's own handling of them
            raise stopped_after_training(self, err.signum) from None
        beat(DONE)  # what follows (figures on rank 0) waits on no other process
        return metrics

    def step(self, x: torch.Tensor, y: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
        """Forward and backward on one batch; an optimizer step at each accumulation end."""
        beat()  # alive, for the launcher's watch under DDP (a no-op otherwise)
        state, acc = self.state, self.cfg.accumulate_grad_batches
        n = y.shape[0]
        x, target = self.task.prepare(x, y)
        with self.autocast:
            out = self.train_net(x)
            loss = self.task.loss(out, target)
        scaled = loss / acc if acc > 1 else loss
        if weight != 1.0:  # DDP, a last batch split unevenly (engine/batches.shares)
            scaled = scaled * weight
        (scaled if self.scaler is None else self.scaler.scale(scaled)).backward()
        with torch.no_grad():
            state.sums[0] += loss.detach() * n
            state.sums[1:] += self.task.metric_sums(out, target)
        state.seen += n
        state.batch += 1
        self.boundary = state.batch % acc == 0 or state.batch == self.batches.steps
        if self.boundary:
            self.optimizer_step()
        return loss

    def optimizer_step(self) -> None:
        clip, opt, scaler = self.cfg.gradient_clip_val, self.optimizer, self.scaler
        if scaler is not None and clip:
            scaler.unscale_(opt)
        if clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        if scaler is None:
            opt.step()
        else:
            scaler.step(opt)
            scaler.update()
        opt.zero_grad(set_to_none=True)
        self.state.step += 1
        if self.state.step == 1:  # start-up cost, for metrics.json
            self.startup_s = process_age()

    def start_epoch(self) -> None:
        state = self.state
        if state.batch == 0:
            state.sums = torch.zeros(len(self.metric_names), device=self.device)
            state.seen = 0
        self.model.train()
        self._t0, self._seen0 = time.perf_counter(), state.seen

    def end_epoch(self) -> dict[str, float]:
        """The epoch's row: train metrics (its one host read), validation, time, lr."""
        state = self.state
        sums, seen = state.sums, state.seen
        if self.dist.world > 1:  # every process's sums, in the same read
            sums, seen = self.dist.sum_counted(sums, seen)
        stats = (sums / max(seen, 1)).tolist()
        elapsed = time.perf_counter() - self._t0
        state.epoch, state.batch = state.epoch + 1, 0
        row: dict[str, float] = {"epoch": state.epoch}
        row.update({f"train/{k}": v for k, v in zip(self.metric_names, stats, strict=True)})
        if self.data.val is not None:
            row.update(self.evaluate(self.net, self.task, self.data.val, self.data.scale, "val"))
        row["epoch_time_s"] = elapsed  # samples/s: those since the epoch (re)started
        row["samples_per_s"] = (seen - self._seen0 * self.dist.world) / max(elapsed, 1e-12)
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        state.rows.append(row)
        return row

    def evaluate(
        self,
        net: nn.Module,
        task: Task,
        split: AnySplit,
        scale: float | None,
        prefix: str,
        keep: bool = False,
    ) -> dict[str, float]:
        """Loss and task metrics over a split (engine/evaluation.py)."""
        return evaluate(self, net, task, split, scale, prefix, keep)

    # -- around the loop ------------------------------------------------------------------------

    def setup(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        task: Task,
        data: Data,
        schedule: Schedule | None,
    ) -> None:
        """Device, compile and DDP wrappers, batches, parts; then a resume, if asked for."""
        cfg, device = self.cfg, self.device
        if device.type == "cpu":
            keep_freed_memory()
        configure_backends(device, cfg.deterministic)
        self.model, self.optimizer, self.task = model.to(device), optimizer, task
        self.data = data.to(device)
        self.net = torch.compile(model) if cfg.compile else model  # evaluation runs this one
        self.train_net = self.net
        if self.dist.world > 1:  # DDP all-reduces the gradients; compile wraps DDP
            self.train_net = wrap(model, device)
            if cfg.compile:
                self.train_net = torch.compile(self.train_net)
        self.scaler = torch.amp.GradScaler(device.type) if cfg.precision == "16-mixed" else None
        self.batches = make_batches(
            self.data.train, self.data.scale, cfg.batch_size, device, self.dist, self.seed,
            cfg.limit_train_batches, cfg.num_workers,
        )  # fmt: skip
        loop_threads(cfg.num_threads, device, getattr(self.batches, "num_workers", 0))
        self.metric_names = ("loss", *task.metric_names)
        splits = ("train", "val") if self.data.val is not None else ("train",)
        self.metric_keys = [f"{s}/{k}" for s in splits for k in self.metric_names]
        default = f"{splits[-1]}/{task.monitor}"
        self.monitor = monitor_for(
            cfg.monitor or default, cfg.monitor_mode, self.metric_keys, "trainer.monitor"
        )
        self.state = RunState()
        self.parts = Parts(builtin_parts(self, schedule or Schedule()))
        self.nan_guard = self.parts.get(NanGuard)
        self.parts.setup(self)
        resume(self)  # a checkpoint's states, if trainer.resume asks for one
        if cfg.compile:
            self.compile_time_s = compile_warm_up(self)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        # Everything built so far (Hydra, configs, modules, data) lives for the whole run:
        # freezing it keeps the garbage collector from rescanning it while the loop churns
        # out short-lived tensors (a measurable share of a small model's step). Only the
        # young generations are collected first: a full pass would rescan the ~200k objects
        # `import torch` left in the oldest one, 0.1 s of start-up to free a few hundred.
        gc.collect(1)
        gc.freeze()
        with StopRequest() as stop:
            self.stop = AgreedStop(stop) if self.dist.world > 1 else stop
            try:
                yield
            finally:
                self.parts.teardown(self)
                gc.unfreeze()

    def save(self, name: str) -> Path | None:
        """Write checkpoints/<name> of this moment (all processes call it; rank 0 writes)."""
        path = self.checkpoint_path(name)
        if path is None or not self.cfg.checkpoint:
            return None
        s = self.state
        if self._saved.get(name) == (s.epoch, s.batch, s.step):
            return path  # this very state is saved already
        if self.nan_guard is not None:
            self.nan_guard.check(self)
        self.parts.on_save_checkpoint(self)
        beat()
        ckpt = snapshot(self)
        if ckpt is not None:
            hook = (lambda: faults.reach("checkpoint_write")) if faults.ENABLED else None
            save_checkpoint(ckpt, path, before_rename=hook, resume_hint=self.resume_hint)
        beat()  # (a large checkpoint takes a while to write; the others wait for it)
        self._saved[name] = (s.epoch, s.batch, s.step)
        return path

    def checkpoint_path(self, name: str = "last.pt") -> Path | None:
        return self.run_dir and self.run_dir / "checkpoints" / name
