"""Starting the processes of a data-parallel run: one per device, one run dir.

Two ways in, both ending in the same Trainer loop:

- `dlx train trainer.devices=N`: the Hydra job (one run dir) builds nothing itself; `spawn`
  starts N worker processes that join one process group (NCCL on CUDA, gloo on CPU) and
  each run the same `run_one(cfg, run_dir)`. Rank 0's log records travel back to the job's
  handlers (console and train.log), rank 0's metrics come back as the job's result.
- `torchrun --nproc_per_node=N -m dlx train ...`: engine/torchrun.py.

Inside the loop `trainer.batch_size` is the global batch: each rank takes a strided share of
every batch of the same permutation (engine/batches.py), so the union of the ranks' batches
is exactly the single-process batch. Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import logging.handlers
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

from dlx.core.errors import DlxError
from dlx.engine import group
from dlx.engine.group import check_devices
from dlx.engine.relay import Relay
from dlx.engine.runtime import set_threads
from dlx.engine.watch import Watch

log = logging.getLogger("dlx")

# After one worker fails, how long the others get to finish on their own (a preempted rank 0
# may still be writing its checkpoint) before they are killed.
GRACE_S = 10.0
WATCH_TICK_S = 0.5  # how often the launcher looks at the heartbeats


# -- dlx train trainer.devices=N --------------------------------------------------------------


def spawn(
    target: Callable[..., dict[str, Any]],
    args: tuple,
    devices: int,
    accelerator: str,
    stall_timeout_s: float = 30.0,
) -> dict[str, Any]:
    """Run `target(*args)` in `devices` processes of one group; rank 0's result.

    Workers run in their own process group, so a Ctrl-C at the terminal reaches only this
    process, which forwards each SIGINT/SIGTERM once to every worker (a second one aborts
    them, as in a single-process run). Workers die with this process (PR_SET_PDEATHSIG).
    Each worker beats a heartbeat every batch: one that stops (SIGSTOP, a deadlock) is
    found within `stall_timeout_s` and the run ends naming it, instead of waiting out gloo's
    30-minute timeout; a signal during such a wait ends the run at once.
    """
    import multiprocessing as mp

    backend = check_devices(devices, accelerator)
    # The rendezvous store lives here, on a port the OS picks: no port to guess or collide.
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    ctx = mp.get_context("spawn")
    pipes = [ctx.Pipe(duplex=False) for _ in range(devices)]  # (receive, send) per rank
    logs = ctx.Queue()
    beats = ctx.Array("d", devices, lock=False)  # each worker's last heartbeat (monotonic)
    watch = Watch(beats, stall_timeout_s)
    listener = Relay(logs)
    procs = [
        ctx.Process(
            target=_worker,
            args=(rank, devices, store.port, backend, target, args, pipes[rank][1], logs, beats),
            name=f"dlx-rank{rank}",
        )
        for rank in range(devices)
    ]
    previous: dict[int, Any] = {}

    def forward(signum: int, frame: Any) -> None:
        watch.signalled(signum)
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
        failed = _join(procs, [r for r, _ in pipes], messages, watch)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join()
        listener.stop()
    if watch.verdict is not None:
        raise watch.verdict
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


def _join(
    procs: list[Any], conns: list[Any], messages: dict[int, tuple], watch: Watch
) -> tuple[int, int] | None:
    """Wait for every worker, collecting the one message each sends; after the first
    failure, give the rest GRACE_S to finish, then stop waiting (the caller kills them).

    Returns (rank, exit code) of the worker whose failure came first, not counting those
    that only lost a peer (their collectives fail once another worker is gone), or None."""
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
        alive = [r for kind, r in waiting.values() if kind == "proc"]
        if watch.check(procs, alive) is not None:
            break  # the caller kills the workers and ends with the watch's verdict
        timeout = WATCH_TICK_S
        if deadline is not None:
            timeout = min(timeout, max(0.0, deadline - time.monotonic()))
        ready = multiprocessing.connection.wait(list(waiting), timeout=timeout)
        if not ready:
            if deadline is not None and time.monotonic() >= deadline:
                break
            continue
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
    beats: Any,
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
    set_threads(None, world)
    group.watch_me(beats, rank)
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
