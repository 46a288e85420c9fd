"""The one training loop for every torch model.

Plain code in the style of pytorch/examples and nanoGPT: data are tensors on the device,
each epoch draws a `randperm` and slices it into batches; metrics are summed on the device
and read once per epoch, so the loop adds no host sync per step (the NaN guard reads the
losses every `log_every_n_steps`). Everything needed to continue a run exactly — weights,
optimizer, scheduler, scaler, the position in the epoch, the running sums, every RNG and the
data order — goes into `checkpoints/last.pt`, so a killed run resumes bit for bit.

Under DDP (engine/distributed.py) the same loop runs in every process: each takes a strided
share of every batch, DistributedDataParallel all-reduces the gradients, the epoch's sums
are added up in the read that already ends the epoch, and only rank 0 writes files. Every
DDP-only step sits behind `world > 1`, so a single process runs the loop as before.
"""

from __future__ import annotations

import csv
import gc
import io
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlx import __version__
from dlx.config import check_trainer
from dlx.data.base import Data, Split
from dlx.engine import distributed, faults
from dlx.engine.callbacks import EarlyStopping, Monitor, mode_for
from dlx.engine.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from dlx.engine.progress import make_bar
from dlx.engine.resume import resume_path
from dlx.engine.runtime import (
    autocast_for,
    configure_backends,
    keep_freed_memory,
    process_age,
    resolve_device,
)
from dlx.engine.schedule import Schedule
from dlx.engine.signals import StopRequest
from dlx.engine.tasks import Task
from dlx.engine.warmup import warm_up
from dlx.errors import ConfigError, DlxError
from dlx.io import atomic_write_text

log = logging.getLogger("dlx")


class Preempted(DlxError):
    """Stopped by SIGTERM/SIGINT after saving a checkpoint; exits with 128 + signal."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


class Diverged(DlxError):
    """The loss became NaN or infinite."""

    exit_code = 1


@dataclass
class LoopState:
    """Where the loop is; saved in every checkpoint."""

    epoch: int = 0  # completed epochs
    batch: int = 0  # batches done in the current epoch
    step: int = 0  # optimizer steps so far
    seen: int = 0  # samples seen in the current epoch
    sums: torch.Tensor | None = None  # running loss/metric sums of the current epoch
    order_epoch_start: torch.Tensor | None = None  # data-order RNG before this epoch's draw
    stopped_early: bool = False
    rows: list[dict[str, float]] = field(default_factory=list)


def history_csv(rows: list[dict[str, float]]) -> str:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def count_params(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


class Trainer:
    def __init__(
        self,
        max_epochs: int = 20,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        accelerator: str = "auto",
        precision: str = "32",
        compile: bool = False,
        deterministic: bool = False,
        progress: bool = True,
        log_every_n_steps: int = 50,
        limit_train_batches: int | None = None,
        limit_eval_batches: int | None = None,
        checkpoint: bool = True,
        checkpoint_every_n_steps: int | None = None,
        monitor: str | None = None,
        monitor_mode: str | None = None,
        resume: str | None = None,
        gradient_clip_val: float | None = None,
        accumulate_grad_batches: int = 1,
        devices: int = 1,
        early_stopping: dict[str, Any] | None = None,
        run_dir: str | Path | None = None,
        seed: int = 0,
        resume_hint: str = "",
        logger: Any = None,
    ) -> None:
        check_trainer(locals())
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.device = resolve_device(accelerator)
        self.precision = str(precision)
        self.autocast = autocast_for(self.precision, self.device)
        self.compile = compile
        self.deterministic = deterministic
        self.progress = progress
        self.log_every_n_steps = log_every_n_steps
        self.limit_train_batches = limit_train_batches
        self.limit_eval_batches = limit_eval_batches
        self.checkpoint = checkpoint
        self.checkpoint_every_n_steps = checkpoint_every_n_steps
        self.monitor = monitor
        self.monitor_mode = monitor_mode
        self.resume = resume
        self.gradient_clip_val = gradient_clip_val
        self.accumulate = accumulate_grad_batches
        self.early_stopping = dict(early_stopping or {})
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.seed = seed
        self.resume_hint = resume_hint
        # dlx.loggers.Logger: gets the losses the NaN guard reads and each epoch's row
        self.logger = logger
        self.state = LoopState()
        self.startup_s: float | None = None  # process start -> end of the first step
        self.compile_time_s: float | None = None
        self._agreed: distributed.AgreedStop | None = None
        # DDP (dlx train trainer.devices=N, or torchrun): this process is one rank of a group.
        self.dist = distributed.current()
        self._join_group(devices)

    def _join_group(self, devices: int) -> None:
        world = self.dist.world
        if world == 1:
            if devices > 1:
                raise ConfigError(
                    f"trainer.devices={devices} starts its processes from `dlx train`; "
                    "from Python, launch your script with torchrun instead"
                )
            return
        if devices not in (1, world):
            raise ConfigError(
                f"trainer.devices={devices} but {world} processes were launched (torchrun); "
                "leave trainer.devices at 1 under torchrun"
            )
        if self.batch_size % world:
            raise ConfigError(
                f"trainer.batch_size={self.batch_size} is the global batch and must divide "
                f"evenly among {world} processes; use a multiple of {world}"
            )
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        elif self.device.type != "cpu":
            raise ConfigError(f"DDP runs on cuda (NCCL) or cpu (gloo), not {self.device.type}")
        self.progress = self.progress and self.dist.main

    @property
    def history(self) -> list[dict[str, float]]:
        return self.state.rows

    def checkpoint_path(self, name: str = "last.pt") -> Path | None:
        return None if self.run_dir is None else self.run_dir / "checkpoints" / name

    def resume_path(self) -> Path | None:
        """The checkpoint to resume from, or None to start fresh."""
        path = resume_path(self.resume, self.checkpoint_path())
        if path is None and self.resume == "auto":
            log.info("trainer.resume=auto: no checkpoint in the run dir yet; starting fresh")
        return path

    # -- the loop ---------------------------------------------------------------------------

    def fit(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        task: Task,
        data: Data,
        config: dict[str, Any] | None = None,
        schedule: Schedule | None = None,
    ) -> dict[str, Any]:
        """Train for max_epochs, validating each epoch; test at the end. Returns metrics."""
        device = self.device
        if device.type == "cpu":
            keep_freed_memory()
        configure_backends(device, self.deterministic)
        model.to(device)
        data = data.to(device)
        world, rank = self.dist.world, self.dist.rank
        net = torch.compile(model) if self.compile else model  # evaluation runs this one
        train_net = net
        if world > 1:  # DDP all-reduces the gradients; compile wraps DDP (its graph breaks)
            train_net = distributed.wrap(model, device)
            if self.compile:
                train_net = torch.compile(train_net)
        scaler = torch.amp.GradScaler(device.type) if self.precision == "16-mixed" else None
        # The data order has its own generator (on the CPU, so it is the same on any
        # device): a checkpoint stores it, and model init does not shift it.
        order = torch.Generator().manual_seed(self.seed)
        train, scale, acc = data.train, data.scale, self.accumulate
        n = len(train)
        steps = math.ceil(n / self.batch_size)
        last_b, last_weight = -1, 1.0
        if world > 1:
            steps, last_b, last_weight = self._shares(n, steps)
        if self.limit_train_batches:
            steps = min(steps, self.limit_train_batches)
            last_b = -1 if steps * self.batch_size < n else last_b
        bs = self.batch_size // world  # this rank's share of each (global) batch
        schedule = schedule or Schedule()
        scheduler = schedule.build(optimizer, math.ceil(steps / acc) * self.max_epochs)
        names = ("loss", *task.metric_names)
        keys = [f"train/{k}" for k in names]
        if data.val is not None:
            keys += [f"val/{k}" for k in names]
        default_monitor = f"{'val' if data.val is not None else 'train'}/{task.monitor}"
        best = self._monitor(
            self.monitor or default_monitor, self.monitor_mode, 0.0, keys, "trainer.monitor"
        )
        stopper = self._early_stopping(best.key, keys)
        plateau_key = None
        if schedule.needs_metric:
            plateau_key = self._monitor(
                schedule.monitor or best.key, None, 0.0, keys, "scheduler.monitor"
            ).key
        es_best: dict[str, torch.Tensor] | None = None
        state = self.state = LoopState()
        parts = {
            "model": model,
            "optimizer": optimizer,
            "scheduler": scheduler,
            "scaler": scaler,
            "order": order,
            "best": best,
            "stopper": stopper,
        }

        resume = self.resume_path()
        if resume is not None:
            es_best = self._restore(resume, parts)
            log.info(
                "resumed from %s at epoch %d, batch %d (step %d)",
                resume,
                state.epoch + 1,
                state.batch,
                state.step,
            )
        if self.logger is not None:
            self.logger.start(state.step, state.epoch)

        if self.compile:
            self.compile_time_s = self._warm_up(train_net, model, task, train, scale, n, steps, bs)
        bar = make_bar(self.progress, self.log_every_n_steps)
        # Everything built so far (Hydra, configs, modules, data) lives for the whole run:
        # freezing it keeps the garbage collector from rescanning it while the loop churns
        # out short-lived tensors (a measurable share of a small model's step). Only the
        # young generations are collected first: a full pass would rescan the ~200k objects
        # `import torch` left in the oldest one, 0.1 s of start-up to free a few hundred.
        gc.collect(1)
        gc.freeze()
        with StopRequest() as stop:
            if world > 1:  # the ranks act on a signal together, see AgreedStop
                stop = self._agreed = distributed.AgreedStop(stop)
            try:
                faults.reach("start")
                while state.epoch < self.max_epochs and not state.stopped_early:
                    epoch = state.epoch + 1
                    if state.batch == 0:
                        state.order_epoch_start = order.get_state()
                        state.sums = torch.zeros(len(names), device=device)
                        state.seen = 0
                    else:  # resuming mid-epoch: draw this epoch's permutation again
                        order.set_state(state.order_epoch_start)
                    perm = torch.randperm(n, generator=order)
                    if world > 1:  # every world-th sample: a strided share of each batch
                        perm = perm[rank::world].contiguous()
                    perm = perm.to(device, non_blocking=True)
                    step_losses = torch.zeros(steps, device=device)  # for the NaN guard
                    checked = state.batch
                    sums = state.sums
                    model.train()
                    bar.start_epoch(epoch, self.max_epochs, steps)
                    t0 = time.perf_counter()
                    for b in range(state.batch, steps):
                        idx = perm[b * bs : (b + 1) * bs]
                        x = to_input(train.x.index_select(0, idx), scale)
                        x, target = task.prepare(x, train.y.index_select(0, idx))
                        with self.autocast:
                            out = train_net(x)
                            loss = task.loss(out, target)
                        backward = loss / acc if acc > 1 else loss
                        if b == last_b:  # DDP, a last batch split unevenly (see _shares)
                            backward = backward * last_weight
                        if scaler is None:
                            backward.backward()
                        else:
                            scaler.scale(backward).backward()
                        nb = idx.shape[0]
                        with torch.no_grad():
                            step_losses[b] = loss.detach()
                            sums[0] += loss.detach() * nb
                            sums[1:] += task.metric_sums(out, target)
                        state.seen += nb
                        boundary = (b + 1) % acc == 0 or b + 1 == steps
                        if boundary:
                            self._optimizer_step(model, optimizer, scaler)
                            state.step += 1
                            if state.step == 1:  # start-up cost, for metrics.json
                                self.startup_s = process_age()
                            if scheduler is not None and schedule.interval == "step":
                                scheduler.step()
                        state.batch = b + 1
                        bar.advance(b, loss.item, nb)
                        if faults.ENABLED:
                            faults.reach("step")
                        if not boundary:
                            continue
                        if b + 1 - checked >= self.log_every_n_steps:
                            self._check_finite(step_losses, checked, b + 1, epoch, steps)
                            checked = b + 1
                        every = self.checkpoint_every_n_steps
                        if stop.requested or (every and state.step % every == 0):
                            self._check_finite(step_losses, checked, b + 1, epoch, steps)
                            checked = b + 1
                            self._save("last.pt", parts, config, es_best)
                        if stop.requested:
                            self._preempted(stop)
                    self._check_finite(step_losses, checked, steps, epoch, steps)
                    seen = state.seen
                    if world > 1:  # every rank's sums, in the same read
                        sums, seen = self.dist.sum_counted(sums, seen)
                    stats = (sums / max(seen, 1)).tolist()  # the epoch's one host sync
                    elapsed = time.perf_counter() - t0
                    bar.end_epoch()
                    row: dict[str, float] = {"epoch": epoch}
                    row.update({f"train/{k}": v for k, v in zip(names, stats, strict=True)})
                    if data.val is not None:
                        row.update(self.evaluate(net, task, data.val, scale, prefix="val"))
                    row["epoch_time_s"] = elapsed
                    row["samples_per_s"] = seen / elapsed
                    row["lr"] = optimizer.param_groups[0]["lr"]
                    state.rows.append(row)
                    if self.logger is not None:
                        self.logger.log_epoch(row, state.step)
                    state.epoch, state.batch = epoch, 0
                    log.info(format_row(row, self.max_epochs))
                    if scheduler is not None and schedule.interval == "epoch":
                        if plateau_key is not None:
                            scheduler.step(row[plateau_key])
                        else:
                            scheduler.step()
                    improved = best.update(row, epoch)
                    if stopper is not None:
                        state.stopped_early = stopper.should_stop(row, epoch)
                        if stopper.wait == 0 and stopper.restore_best_weights:
                            es_best = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    self._write_csv()
                    self._save("last.pt", parts, config, es_best)
                    if improved:
                        self._save("best.pt", parts, config, es_best)
                    faults.reach("epoch_end")
                    if state.stopped_early:
                        log.info(
                            "early stopping: %s has not improved for %d epochs (best %.4f "
                            "at epoch %d)",
                            stopper.monitor.key,
                            stopper.patience,
                            stopper.monitor.best,
                            stopper.monitor.best_epoch,
                        )
                    if stop.requested:
                        self._preempted(stop)
            finally:
                bar.close()
                gc.unfreeze()

        if stopper is not None and stopper.restore_best_weights and es_best is not None:
            model.load_state_dict(es_best)
        return self._final_metrics(model, net, task, data, best, stopper)

    def _final_metrics(
        self,
        model: nn.Module,
        net: nn.Module,
        task: Task,
        data: Data,
        best: Monitor,
        stopper: EarlyStopping | None,
    ) -> dict[str, Any]:
        rows = self.state.rows
        total, trainable = count_params(model)
        metrics: dict[str, Any] = {"num_params": total, "num_trainable_params": trainable}
        if rows:
            metrics.update({k: v for k, v in rows[-1].items() if "/" in k})
        if data.test is not None:
            metrics.update(self.evaluate(net, task, data.test, data.scale, prefix="test"))
        metrics["epochs"] = len(rows)
        metrics["epoch_time_s"] = [r["epoch_time_s"] for r in rows]
        samples = sum(r["samples_per_s"] * r["epoch_time_s"] for r in rows)
        metrics["train_samples_per_s"] = samples / max(sum(metrics["epoch_time_s"]), 1e-12)
        if self.startup_s is not None:
            metrics["startup_s"] = self.startup_s
        if self.compile_time_s is not None:
            metrics["compile_time_s"] = self.compile_time_s
        metrics["monitor"] = best.key
        metrics["best_epoch"] = best.best_epoch
        if stopper is not None and stopper.stopped_epoch:
            metrics["stopped_epoch"] = stopper.stopped_epoch
        return metrics

    def _shares(self, n: int, steps: int) -> tuple[int, int, float]:
        """DDP: (steps, index of an unevenly split last batch or -1, its loss weight).

        Rank r takes samples r, r + world, ... of the epoch's permutation, batch_size/world
        at a time: exactly the r-th strided share of each global batch, so the ranks
        together see the single-process batches. DDP averages the ranks' gradients; when the
        last batch does not divide evenly, each rank's mean loss is weighted by its share so
        the average is still the mean over that batch. A last batch smaller than the world
        would leave a rank with nothing to do: those few samples are dropped each epoch.
        """
        world, rank, big = self.dist.world, self.dist.rank, self.batch_size
        tail = n % big
        if 0 < tail < world:
            log.warning(
                "DDP: the last %d sample(s) of each epoch are fewer than the %d processes and "
                "are skipped (train size %d, batch_size %d)",
                tail,
                world,
                n,
                big,
            )
            return steps - 1, -1, 1.0
        if tail == 0 or tail % world == 0:
            return steps, -1, 1.0
        mine = len(range(rank, n, world)) - (steps - 1) * (big // world)
        return steps, steps - 1, world * mine / tail

    def _warm_up(
        self,
        net: nn.Module,
        model: nn.Module,
        task: Task,
        train: Split,
        scale: float | None,
        n: int,
        steps: int,
        bs: int,
    ) -> float:
        """Compile for this rank's batch shapes before the timed epochs (see warmup.py)."""
        mine = len(range(self.dist.rank, n, self.dist.world))
        sizes = [bs, min(bs, mine - (steps - 1) * bs)]  # a full batch, then the last one
        if self.dist.world == 1 and sizes[0] == sizes[1]:
            sizes.pop()  # (under DDP every rank runs both: each backward is an all-reduce)
        batches = [task.prepare(to_input(train.x[:k], scale), train.y[:k]) for k in sizes]
        took = warm_up(net, model, task, batches, self.autocast)
        log.info("compiled in %.1fs (warm-up outside the timed epochs)", took)
        return took

    def _optimizer_step(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: Any
    ) -> None:
        if scaler is not None:
            if self.gradient_clip_val:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), self.gradient_clip_val)
            scaler.step(optimizer)
            scaler.update()
        else:
            if self.gradient_clip_val:
                nn.utils.clip_grad_norm_(model.parameters(), self.gradient_clip_val)
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    @torch.inference_mode()
    def evaluate(
        self, model: nn.Module, task: Task, split: Split, scale: float | None, prefix: str
    ) -> dict[str, float]:
        """Loss and task metrics over a split, as `{prefix}/{name}`."""
        was_training = model.training
        model.eval()
        names = ("loss", *task.metric_names)
        sums = torch.zeros(len(names), device=self.device)
        n, ebs, seen = len(split), self.eval_batch_size, 0
        if self.limit_eval_batches:
            n = min(n, self.limit_eval_batches * ebs)
        xs, ys = split.x, split.y
        if self.dist.world > 1:  # DDP: each rank scores a contiguous share; sums added below
            lo, hi = self.dist.share(n)
            xs, ys, n = xs[lo:hi], ys[lo:hi], hi - lo
        for i in range(math.ceil(n / ebs)):
            if faults.ENABLED:
                faults.reach("eval")
            x = to_input(xs[i * ebs : min((i + 1) * ebs, n)], scale)
            x, target = task.prepare(x, ys[i * ebs : min((i + 1) * ebs, n)])
            with self.autocast:
                out = model(x)
                loss = task.loss(out, target)
            b = x.shape[0]
            sums[0] += loss * b
            sums[1:] += task.metric_sums(out, target)
            seen += b
        model.train(was_training)
        if self.dist.world > 1:
            sums, seen = self.dist.sum_counted(sums, seen)
        values = (sums / max(seen, 1)).tolist()
        return {f"{prefix}/{k}": v for k, v in zip(names, values, strict=True)}

    # -- guards ---------------------------------------------------------------------------------

    def _monitor(
        self, key: str, mode: str | None, min_delta: float, keys: list[str], option: str
    ) -> Monitor:
        if key not in keys:
            raise ConfigError(
                f"{option}={key} is not a metric of this run (it has {', '.join(keys)}); "
                "pick one of those, or add a validation split with dataset.val_split"
            )
        return Monitor(key, mode_for(key, mode), min_delta)

    def _early_stopping(self, default_key: str, keys: list[str]) -> EarlyStopping | None:
        es = self.early_stopping
        if not es.get("enabled"):
            return None
        monitor = self._monitor(
            es.get("monitor") or default_key,
            es.get("mode"),
            float(es.get("min_delta") or 0.0),
            keys,
            "callbacks.early_stopping.monitor",
        )
        return EarlyStopping(
            monitor, int(es.get("patience", 5)), bool(es.get("restore_best_weights", True))
        )

    def _check_finite(self, losses: torch.Tensor, lo: int, hi: int, epoch: int, steps: int) -> None:
        if hi <= lo:
            return
        values = losses[lo:hi].tolist()  # the guard's one host read of this window
        bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
        # DDP: every rank stops if any rank's loss went bad (and learns of a stop request)
        agreed = self._agreed
        if agreed is not None and agreed.agree(bad is not None, self.device) and bad is None:
            raise Diverged(
                f"the loss became non-finite on another process at epoch {epoch}, "
                f"batches {lo + 1}-{hi}/{steps}; try a lower optimizer.lr or "
                "trainer.gradient_clip_val"
            )
        if bad is None:
            if self.logger is not None and values:  # the loggers reuse that read
                self.logger.log_losses(self.state.step, epoch, values)
            return
        b = lo + bad
        last = self.checkpoint_path()
        kept = (
            f"the last good checkpoint is {last}"
            if last and last.exists()
            else ("no checkpoint was written before it")
        )
        raise Diverged(
            f"loss became {values[bad]} at epoch {epoch}, batch {b + 1}/{steps}; training "
            f"stopped and {kept}; try a lower optimizer.lr or trainer.gradient_clip_val"
        )

    def _preempted(self, stop: StopRequest | distributed.AgreedStop) -> None:
        if self.dist.world > 1:  # no rank leaves before rank 0 has written the checkpoint
            torch.distributed.barrier()
        path = self.checkpoint_path()
        saved = f"saved {path}" if path and self.checkpoint else "no checkpoint (checkpoint off)"
        hint = f"; resume with: {self.resume_hint}" if self.resume_hint and path else ""
        raise Preempted(
            f"stopped by {stop.name} at epoch {self.state.epoch + 1}, batch {self.state.batch} "
            f"(step {self.state.step}); {saved}{hint}",
            stop.signum or 15,
        )

    # -- checkpoints ----------------------------------------------------------------------------

    def _save(
        self,
        name: str,
        parts: dict[str, Any],
        config: dict[str, Any] | None,
        es_best: dict[str, torch.Tensor] | None,
    ) -> None:
        path = self.checkpoint_path(name)
        if path is None or not self.checkpoint:
            return
        s = self.state
        rng, sums, seen, ranks = rng_state(), s.sums, s.seen, None
        if self.dist.world > 1:
            # DDP: each rank's own loop state. Its running sums (mid-epoch), and its RNG: the
            # ranks' streams part once their batch sizes differ (an uneven last batch draws
            # fewer dropout masks), so a bit-exact resume restores each rank's own.
            mine = {"rng": rng, "sums": None if not s.batch or sums is None else sums.cpu()}
            ranks = [None] * self.dist.world
            torch.distributed.all_gather_object(ranks, {**mine, "seen": s.seen})
            if mine["sums"] is not None:  # the totals, for a resume on another world size
                sums = sum(r["sums"] for r in ranks)
                seen = sum(r["seen"] for r in ranks)
        if not self.dist.main:
            return
        opt = lambda k: None if parts[k] is None else parts[k].state_dict()  # noqa: E731
        ckpt = {
            "format": 1,
            "model": parts["model"].state_dict(),
            "optimizer": parts["optimizer"].state_dict(),
            "scheduler": opt("scheduler"),
            "scaler": opt("scaler"),
            "epoch": s.epoch,
            "step": s.step,
            "loop": {
                "batch": s.batch,
                "seen": seen,
                "sums": None if s.batch == 0 or sums is None else sums.cpu(),
                "order": parts["order"].get_state(),
                "order_epoch_start": s.order_epoch_start,
                "stopped_early": s.stopped_early,
            },
            "rng": rng,
            "ranks": ranks,
            "history": s.rows,
            "callbacks": {"best": parts["best"].state_dict(), "early_stopping": opt("stopper")},
            "early_stopping_best_model": es_best,
            "config": config or {},
            "dlx_version": __version__,
        }
        hook = (lambda: faults.reach("checkpoint_write")) if faults.ENABLED else None
        save_checkpoint(ckpt, path, before_rename=hook, resume_hint=self.resume_hint)

    def _restore(self, path: Path, parts: dict[str, Any]) -> dict[str, torch.Tensor] | None:
        ckpt = load_checkpoint(path, map_location=self.device)
        load_model_state(parts["model"], ckpt["model"], path)
        if "optimizer" not in ckpt:
            raise CheckpointError(
                f"checkpoint {path} holds weights only (no optimizer state), so a run cannot "
                f"resume from it; start from its weights with model.init_from={path}"
            )
        try:
            parts["optimizer"].load_state_dict(ckpt["optimizer"])
            for key in ("scheduler", "scaler"):
                if parts[key] is not None and ckpt.get(key) is not None:
                    parts[key].load_state_dict(ckpt[key])
        except (ValueError, KeyError, RuntimeError) as err:
            raise ConfigError(
                f"checkpoint {path} was saved with another optimizer or scheduler set-up "
                f"({str(err).splitlines()[0]}); resume with the options it was trained with"
            ) from None
        loop = ckpt.get("loop")
        if loop is None:  # a weights-only checkpoint from elsewhere
            return None
        try:
            self._restore_loop(ckpt, loop, parts)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError) as err:
            # load_checkpoint checked the entries' types; this is their inside (a hand-made
            # or damaged file): refused in one line rather than a traceback.
            raise CheckpointError(
                f"checkpoint {path} is not a complete dlx checkpoint (its loop state does not "
                f"read: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                "resume from another one, or start from its weights with model.init_from"
            ) from None
        return ckpt.get("early_stopping_best_model")

    def _restore_loop(self, ckpt: dict, loop: dict, parts: dict[str, Any]) -> None:
        s = self.state
        s.epoch, s.step, s.batch, s.seen = ckpt["epoch"], ckpt["step"], loop["batch"], loop["seen"]
        s.sums = None if loop["sums"] is None else loop["sums"].to(self.device)
        s.order_epoch_start = loop["order_epoch_start"]
        s.stopped_early = loop["stopped_early"]
        s.rows = list(ckpt["history"])
        parts["order"].set_state(loop["order"])
        parts["best"].load_state_dict(ckpt["callbacks"]["best"])
        if parts["stopper"] is not None and ckpt["callbacks"]["early_stopping"] is not None:
            parts["stopper"].load_state_dict(ckpt["callbacks"]["early_stopping"])
        ranks = ckpt.get("ranks")
        if ranks is not None and len(ranks) == self.dist.world:  # DDP, same world: its own
            own = ranks[self.dist.rank]
            set_rng_state(own["rng"])
            s.sums = None if own["sums"] is None else own["sums"].to(self.device)
            s.seen = own["seen"]
        else:
            set_rng_state(ckpt["rng"])
            if not self.dist.main and s.sums is not None:  # rank 0 carries the saved totals
                s.sums.zero_()
                s.seen = 0

    def _write_csv(self) -> None:
        if self.run_dir is not None and self.dist.main:
            atomic_write_text(history_csv(self.state.rows), self.run_dir / "metrics.csv")


def to_input(x: torch.Tensor, scale: float | None) -> torch.Tensor:
    """Stored samples -> model input: integer pixels become scaled floats, per batch."""
    if scale is None:  # token ids and other integer inputs go in as they are
        return x
    if x.is_floating_point():
        return x if scale == 1.0 else x * scale
    return x.to(torch.float32).mul_(scale)  # a fresh tensor: scaling in place is safe


def format_row(row: dict[str, float], max_epochs: int) -> str:
    parts = [f"epoch {int(row['epoch'])}/{max_epochs}"]
    parts += [f"{k} {v:.4f}" for k, v in row.items() if "/" in k]
    parts.append(f"{row['epoch_time_s']:.2f}s ({row['samples_per_s']:,.0f} samples/s)")
    return "  ".join(parts)
