"""Device, precision and seeding: the few global switches a run sets once."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from dlx.core.errors import ConfigError
from dlx.core.schemas import ACCELERATORS, PRECISIONS


def process_age() -> float | None:
    """Seconds since this process started, from /proc (None where there is no /proc).

    Start-up cost (imports, config, data) is paid before `time.perf_counter()` can be read
    by our code, so it is measured from the kernel's record of the process start.
    """
    try:
        stat = open("/proc/self/stat").read()  # noqa: SIM115 - tiny, read once
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime
        uptime = float(open("/proc/uptime").read().split()[0])  # noqa: SIM115
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory(mmap_threshold: int = 64 << 20, trim_threshold: int = 1 << 30) -> bool:
    """Let glibc keep freed blocks for reuse instead of handing them back to the kernel.

    A CPU training step frees and re-allocates the same few megabytes (the batch,
    activations, gradients). With glibc's defaults those blocks are often mmap'd or trimmed
    from the heap top on free, so every step touches fresh pages again: hundreds of page
    faults a step, each zeroing a page (measured: ~400 a step for the book's MLP, ~0 with
    this), which is most of what separated the loop from a hand-written one. The process
    keeps up to its peak usage, which a training run reaches anyway. A no-op off glibc.
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1
    return mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1 and ok


def cores() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


_chosen: list[int] = []  # set_threads' last count: the loop's base, stage after stage


def set_threads(explicit: int | None, sharing: int = 1) -> int:
    """torch's intra-op threads: `explicit` (trainer.num_threads), else the cores divided
    among the `sharing` processes a run starts on this machine (DDP workers, a joblib
    sweep's parallel jobs), so they do not fight over the cores. Returns the count."""
    threads = explicit or max(1, cores() // max(1, sharing))
    _chosen[:] = [threads]
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads


def loop_threads(explicit: int | None, device: torch.device, workers: int) -> None:
    """The loop's say on threads: trainer.num_threads where set, else set_threads' choice
    less a core for each of a streamed split's loader workers on a CPU: they decode on the
    same cores (the 6-12 CNN streamed from JPEGs on 2 cores with 2 workers: 12.3 s an epoch
    with 1 thread, 14.0 s with 2)."""
    if not _chosen:  # the Trainer used as a library: torch's own count is the base
        _chosen.append(torch.get_num_threads())
    base = explicit or _chosen[0]
    threads = max(1, base - workers) if workers and not explicit and device.type == "cpu" else base
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)


def busy_cpu_note(threads: int) -> str | None:
    """A line for a run about to share its cores with other work (measured: a digits epoch
    took 6.75 s with torch's default threads on a busy 2-core machine, 0.06 s with one)."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return None
    n = cores()
    if threads > 1 and load > n + 0.5:
        return (
            f"the CPU is busy (load {load:.1f} on {n} cores): {threads} torch threads will "
            "wait on each other and on the other work; trainer.num_threads=1 is often "
            "much faster on a shared machine"
        )
    return None


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs this to be deterministic; harmless elsewhere.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def resolve_device(accelerator: str) -> torch.device:
    if accelerator not in ACCELERATORS:
        raise ConfigError(
            f"trainer.accelerator={accelerator!r} is not one of {', '.join(ACCELERATORS)}"
        )
    if accelerator == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if accelerator == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.accelerator=cuda but no CUDA device is visible; use auto or cpu")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("trainer.accelerator=mps but MPS is not available; use auto or cpu")
    return torch.device(accelerator)


def autocast_for(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context for a precision setting (a no-op for fp32)."""
    precision = str(precision)
    if precision not in PRECISIONS:
        raise ConfigError(f"trainer.precision={precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def configure_backends(device: torch.device, deterministic: bool) -> None:
    """Per-device speed switches that do not change what is computed."""
    if device.type == "cuda":
        # cuDNN times its algorithms for each new shape and keeps the fastest: the shapes
        # repeat every step here (fixed batch size), so the search pays off at once. Off
        # under trainer.deterministic, where the chosen algorithm must not vary.
        torch.backends.cudnn.benchmark = not deterministic
