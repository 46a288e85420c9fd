"""Data-parallel training: one process per device, gradients all-reduced by DDP, one run dir.

Two ways in, both ending in the same Trainer loop:

- `dlx train trainer.devices=N`: the Hydra job (one run dir) builds nothing itself; `spawn`
  starts N worker processes that join one process group (NCCL on CUDA, gloo on CPU) and
  each run the same `run_one(cfg, run_dir)`. Rank 0's log records travel back to the job's
  handlers (console and train.log), rank 0's metrics come back as the job's result.
- `torchrun --nproc_per_node=N -m dlx train ...`: torchrun starts N copies of the CLI. Each
  joins the process group before Hydra runs (`init_torchrun`); rank 0 runs Hydra as usual
  and broadcasts its run dir (`share_run_dir`); the other ranks compose the same config
  without Hydra, so they create no run dir of their own and write no `.hydra/` or log file.

Inside the loop (see trainer.py) `trainer.batch_size` is the global batch: each rank takes a
strided share of every batch of the same permutation, so the union of the ranks' batches is
exactly the single-process batch. Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import logging.handlers
import multiprocessing.connection
import os
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from dlx.errors import ConfigError, DlxError

log = logging.getLogger("dlx")

# After one worker fails, how long the others get to finish on their own (a preempted rank 0
# may still be writing its checkpoint) before they are killed.
GRACE_S = 10.0


@dataclass(frozen=True)
class Dist:
    """This process's place in the process group; `Dist()` is the single-process case."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum_counted(self, sums: torch.Tensor, count: int) -> tuple[torch.Tensor, int]:
        """(sums, count) added up over all ranks in one all-reduce (float64: counts stay exact)."""
        packed = torch.cat([sums.double(), sums.new_tensor([count], dtype=torch.float64)])
        dist.all_reduce(packed)
        return packed[:-1].to(sums.dtype), int(packed[-1].item())

    def share(self, n: int) -> tuple[int, int]:
        """This rank's contiguous slice [lo, hi) of n items (evaluation shards)."""
        per, extra = divmod(n, self.world)
        lo = self.rank * per + min(self.rank, extra)
        return lo, lo + per + (1 if self.rank < extra else 0)


def current() -> Dist:
    """The process group this process is in, or the single-process Dist()."""
    if not (dist.is_available() and dist.is_initialized()):
        return Dist()
    rank = dist.get_rank()
    return Dist(rank, dist.get_world_size(), int(os.environ.get("LOCAL_RANK", rank)))


def initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def is_main() -> bool:
    """True outside a process group and on rank 0: the one process that writes files."""
    return not initialized() or dist.get_rank() == 0


def wants_cuda(accelerator: str) -> bool:
    return accelerator == "cuda" or (accelerator == "auto" and torch.cuda.is_available())


def check_devices(devices: int, accelerator: str) -> str:
    """The backend for `devices` processes on `accelerator`, or a ConfigError."""
    if accelerator == "mps":
        raise ConfigError("trainer.devices > 1 is not supported on mps; use cpu or cuda")
    if wants_cuda(accelerator):
        if not torch.cuda.is_available():
            raise ConfigError(
                "trainer.accelerator=cuda but no CUDA device is visible; use auto or cpu"
            )
        have = torch.cuda.device_count()
        if devices > have:
            raise ConfigError(
                f"trainer.devices={devices} but only {have} CUDA device(s) are visible; "
                f"use trainer.devices<={have}, or trainer.accelerator=cpu for gloo processes"
            )
        return "nccl"
    return "gloo"


def set_threads(world_on_this_host: int) -> None:
    """N workers on C cores: max(1, C // N) intra-op threads each, so they do not contend."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(max(1, (cores or 1) // world_on_this_host))


class AgreedStop:
    """A stop request all ranks act on together.

    Each rank sees SIGTERM/Ctrl-C at its own step; acting on it alone would leave the others
    waiting in an all-reduce. `requested` therefore changes only in `agree()`, which the
    trainer calls where it already syncs with the host (the NaN check every
    `log_every_n_steps` and at the end of each epoch), in the same all-reduce that also
    agrees on whether any rank saw a non-finite loss.
    """

    def __init__(self, stop: Any) -> None:
        self._stop = stop
        self.requested = False

    @property
    def signum(self) -> int | None:
        return self._stop.signum

    @property
    def name(self) -> str:
        return self._stop.name or "a signal on another rank"

    def agree(self, bad: bool, device: torch.device) -> bool:
        """Returns whether any rank saw a bad loss; updates `requested` from every rank."""
        flags = torch.tensor([float(bad), float(self._stop.requested)], device=device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        any_bad, any_stop = flags.tolist()
        self.requested = any_stop > 0
        return any_bad > 0


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel around `model` (rank 0's weights are broadcast to all)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


# -- dlx train trainer.devices=N --------------------------------------------------------------


class _Relay:
    """Hands rank 0's log records, from a queue, to this process's loggers of the same name.

    Not logging's QueueListener: its stop() puts an end marker on the queue, which waits
    forever for the queue's lock when a worker was killed while writing a record. This one
    puts nothing, and stop() waits only so long for the records in flight: a record cut off
    by a kill would block the reading thread for good (a daemon, left behind).
    """

    def __init__(self, records: Any) -> None:
        self._records = records
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dlx-log-relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                record = self._records.get(timeout=0.1)
            except queue.Empty:
                if self._done.is_set():  # every worker is gone and their records are read
                    return
                continue
            except (EOFError, OSError):
                return
            logging.getLogger(record.name).handle(record)

    def stop(self, timeout: float = 2.0) -> None:
        self._done.set()
        self._thread.join(timeout)


def spawn(
    target: Callable[..., dict[str, Any]], args: tuple, devices: int, accelerator: str
) -> dict[str, Any]:
    """Run `target(*args)` in `devices` processes of one group; rank 0's result.

    Workers run in their own process group, so a Ctrl-C at the terminal reaches only this
    process, which forwards each SIGINT/SIGTERM once to every worker (a second one aborts
    them, as in a single-process run). Workers die with this process (PR_SET_PDEATHSIG).
    """
    import multiprocessing as mp

    backend = check_devices(devices, accelerator)
    # The rendezvous store lives here, on a port the OS picks: no port to guess or collide.
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    ctx = mp.get_context("spawn")
    pipes = [ctx.Pipe(duplex=False) for _ in range(devices)]  # (receive, send) per rank
    logs = ctx.Queue()
    listener = _Relay(logs)
    procs = [
        ctx.Process(
            target=_worker,
            args=(rank, devices, store.port, backend, target, args, pipes[rank][1], logs),
            name=f"dlx-rank{rank}",
        )
        for rank in range(devices)
    ]
    previous: dict[int, Any] = {}

    def forward(signum: int, frame: Any) -> None:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signum)

    log.info("trainer.devices=%d: %d %s worker processes", devices, devices, backend)
    messages: dict[int, tuple] = {}
    try:
        for p in procs:
            p.start()
        for _, send in pipes:
            send.close()  # the workers hold the send ends; EOF here when one exits
        if threading.current_thread() is threading.main_thread():  # not in a launcher thread
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, forward)
        failed = _join(procs, [r for r, _ in pipes], messages)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join()
        listener.stop()
    if failed is None and 0 in messages and messages[0][0] == "ok":
        return messages[0][1]
    errors = [m for _, m in sorted(messages.items()) if m[0] == "error"]
    if errors:  # the lowest rank's message: rank 0's says what was saved
        _, code, message = errors[0]
        err = DlxError(message)
        err.exit_code = code
        raise err
    rank, code = failed if failed is not None else (0, 1)
    if messages.get(rank, ("",))[0] == "crash":  # the failure behind the others: say where
        sys.stderr.write(f"worker rank {rank} crashed:\n{messages[rank][2]}")
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    err = DlxError(f"trainer.devices={devices}: worker rank {rank} {how} (see its output above)")
    err.exit_code = 1
    raise err


def _join(procs: list[Any], conns: list[Any], messages: dict[int, tuple]) -> tuple[int, int] | None:
    """Wait for every worker, collecting the one message each sends; after the first
    failure, give the rest GRACE_S to finish, then stop waiting (the caller kills them).

    Returns (rank, exit code) of the worker whose failure came first, not counting those
    that only lost a peer (their collectives fail once another worker is gone), or None."""
    import time

    waiting: dict[Any, tuple[str, int]] = {p.sentinel: ("proc", r) for r, p in enumerate(procs)}
    waiting.update({c: ("conn", r) for r, c in enumerate(conns)})
    failed: tuple[int, int] | None = None
    lost: tuple[int, int] | None = None
    deadline = None

    def receive(rank: int) -> None:
        conn = conns[rank]
        if conn in waiting:
            with contextlib.suppress(EOFError):  # exited without a word
                if conn.poll():  # a worker's message is sent before it exits
                    messages[rank] = conn.recv()
            del waiting[conn]
            conn.close()

    while any(kind == "proc" for kind, _ in waiting.values()):
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready = multiprocessing.connection.wait(list(waiting), timeout=timeout)
        if not ready:
            break
        for obj in ready:
            if obj not in waiting:  # a conn already read with its process's exit
                continue
            kind, rank = waiting[obj]
            if kind == "conn":
                receive(rank)
                continue
            del waiting[obj]
            procs[rank].join()
            code = procs[rank].exitcode
            if code == 0:
                continue
            receive(rank)
            deadline = deadline or time.monotonic() + GRACE_S
            if _lost_peer(messages.get(rank)):
                lost = lost or (rank, code)
            elif failed is None:
                failed = (rank, code)
    for kind, rank in list(waiting.values()):  # a message sent just before the exit
        if kind == "conn":
            receive(rank)
    return failed or lost


def _lost_peer(message: tuple | None) -> bool:
    return message is not None and message[0] == "crash" and message[3]


def _in_collective(err: BaseException) -> bool:
    """Whether `err` came out of the process group: once a worker is gone, the others'
    collectives fail (gloo: "Connection reset by peer"), and their tracebacks say nothing
    about why. From torch.distributed or DDP's Python code, or the backend's C++ (DDP's
    all-reduce runs inside backward)."""
    if isinstance(err, getattr(dist, "DistError", ())):
        return True
    where = [f.filename.replace("\\", "/") for f in traceback.extract_tb(err.__traceback__)]
    if any("torch/distributed/" in f or "torch/nn/parallel/" in f for f in where[-3:]):
        return True
    text = str(err)
    return "gloo" in text or "NCCL" in text or "c10d" in text


def _die_with_parent() -> None:
    # Linux: SIGKILL this worker when the launcher dies, so no orphan keeps training.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker(
    rank: int,
    world: int,
    port: int,
    backend: str,
    target: Callable[..., dict[str, Any]],
    args: tuple,
    result: Any,
    logs: Any,
) -> None:
    os.setpgid(0, 0)  # terminal signals go to the launcher only; it forwards them
    _die_with_parent()
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world))
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.INFO)
    if rank == 0:
        root.addHandler(logging.handlers.QueueHandler(logs))
    else:  # the other ranks only speak up for warnings and errors
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter(f"[rank {rank}] %(message)s"))
        root.addHandler(handler)
    set_threads(world)
    code = 0
    try:
        store = dist.TCPStore("127.0.0.1", port, is_master=False)
        if backend == "nccl":
            torch.cuda.set_device(rank)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world)
        metrics = target(*args)
        result.send(("ok", metrics))
    except DlxError as err:
        result.send(("error", err.exit_code, str(err)))
        code = err.exit_code
    except KeyboardInterrupt:
        result.send(("error", 130, "interrupted"))
        code = 130
    except Exception as err:  # the launcher shows the traceback if this failure came first
        result.send(("crash", 1, traceback.format_exc(), _in_collective(err)))
        code = 1
    result.close()
    if code == 0:
        # Free what still holds gloo work (DDP's reducer sits in reference cycles) while the
        # interpreter is whole, then end the group. On error, skip that: it could wait on
        # ranks that are gone.
        gc.collect()
        dist.destroy_process_group()
    # Flush rank 0's last log records, then leave without the interpreter's teardown: gloo
    # threads that outlive it abort the process ("terminate called without an active
    # exception", seen about once in a hundred runs). Files and loggers are closed by now.
    logs.close()
    logs.join_thread()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# -- torchrun -----------------------------------------------------------------------------------

_objects_group: Any = None  # a gloo group for the run-dir broadcast when the default is NCCL


def init_torchrun(accelerator: str) -> Dist:
    """Join the group torchrun set up (env://): NCCL on CUDA, gloo on CPU."""
    global _objects_group
    if initialized():
        return current()
    world = int(os.environ["WORLD_SIZE"])
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    backend = check_devices(local_world, accelerator)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    set_threads(local_world)
    dist.init_process_group(backend, init_method="env://")
    if backend != "gloo":
        _objects_group = dist.new_group(backend="gloo")
    return current()


def leave_torchrun() -> None:
    """End the torchrun process group after a run that went well.

    Left to the interpreter's exit, NCCL warns and gloo's threads can abort the process (see
    _worker). After an error this is skipped: it could wait on ranks that are gone.
    """
    global _objects_group
    if dist.is_available() and dist.is_initialized():
        gc.collect()  # DDP's reducer, in reference cycles, still holds work of the group
        dist.destroy_process_group()  # the default group and _objects_group
        _objects_group = None


def share_run_dir(run_dir: str | None) -> str:
    """Rank 0 sends its Hydra run dir; every rank returns it."""
    box = [run_dir]
    dist.broadcast_object_list(box, src=0, group=_objects_group)
    return str(box[0])
