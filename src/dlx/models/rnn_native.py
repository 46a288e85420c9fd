"""The LSTM of `rnn_fused` with its time loop in C (`rnn_native.c`): the same math, ~1.5x
faster a batch on a 2-core CPU (the loop's small ops cost dispatch, not arithmetic).

Built on first use by the machine's C compiler (`$CC`, else `cc`) into
`$DLX_CACHE_DIR/native/` (default `~/.cache/dlx/native`), one file per source, compiler, CPU
and torch version, written to a temp name and renamed; loaded with ctypes. The C code calls
torch's own BLAS (MKL's `sgemm_`) and runs on torch's OpenMP threads, so it needs torch's
Linux x86-64 build; elsewhere, and for float64, CUDA or the GRU, `why_not` says why and the
model runs `rnn_fused` (`model.impl=auto`). A cached library is loaded only if this user owns
it and nobody else can write it or its folder: it is code, not data.

Why C and not torch.utils.cpp_extension: the kernel needs no torch headers, so it builds in
~0.2 s with any C compiler, against ~1 min for a torch extension.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from dlx.models.rnn_fused import (
    LOW_PRECISION,
    apply_sequence,
    lstm_buffers,
    lstm_param_grads,
    no_autocast,
)

Tensor = torch.Tensor
log = logging.getLogger("dlx")
SOURCE = Path(__file__).with_name("rnn_native.c")
FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-fopenmp")
_P, _I, _L = ctypes.c_void_p, ctypes.c_int, ctypes.c_long
TEMP = "build-"  # a build's temp folder in the cache, renamed into place when done
BUILD_TIMEOUT_S = 120


def why_not(x: Tensor) -> str | None:
    """Why the C loop cannot run this input (one clause), or None when it can."""
    if x.device.type != "cpu":
        return f"it runs on the CPU, not {x.device.type}"
    autocast = x.dtype in LOW_PRECISION and torch.is_autocast_enabled("cpu")  # runs float32
    if x.dtype != torch.float32 and not autocast:
        return f"it runs float32, not {x.dtype}"
    return library()[1]


def lstm_sequence(
    x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor, mask: Tensor | None = None
) -> Tensor:
    """`rnn_fused.lstm_sequence` with the time loop in C (check `why_not(x)` first)."""
    return apply_sequence(_NativeLSTM, x, w_ih, w_hh, b_ih, b_hh, mask)


def cache_dir() -> Path:
    return Path(os.environ.get("DLX_CACHE_DIR") or "~/.cache/dlx").expanduser() / "native"


@functools.cache
def library() -> tuple[ctypes.CDLL | None, str | None]:
    """The loaded kernel and None, or None and why it is not available here."""
    try:
        blas = _torch_blas()
        lib = ctypes.CDLL(str(_built()))
    except (OSError, RuntimeError, subprocess.SubprocessError) as err:
        return None, str(err)
    lib.dlx_set_blas.argtypes = [_P, _P]
    lib.dlx_lstm_fwd.argtypes = [_I] * 4 + [_P] * 5 + [_L, _L, _P, _P]
    lib.dlx_lstm_bwd.argtypes = [_I] * 4 + [_P] * 8
    lib.dlx_set_blas(*blas)
    return lib, None


def _torch_blas() -> tuple[int, int]:
    """The addresses of MKL's sgemm_ and MKL_Set_Num_Threads_Local in torch's CPU library,
    after checking that torch runs libgomp (the kernel's OpenMP must be torch's)."""
    path = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    if not sys.platform.startswith("linux") or platform.machine() != "x86_64":
        here = f"{sys.platform} {platform.machine()}"
        raise RuntimeError(f"it needs torch's Linux x86-64 build, not {here}")
    maps = Path("/proc/self/maps").read_text()
    if "libgomp" not in maps or not path.exists():
        raise RuntimeError("this torch build does not run libgomp's OpenMP")
    torch_cpu = ctypes.CDLL(str(path))
    try:
        fns = torch_cpu.sgemm_, torch_cpu.MKL_Set_Num_Threads_Local
    except AttributeError:
        raise RuntimeError("this torch build has no MKL sgemm") from None
    return tuple(ctypes.cast(f, ctypes.c_void_p).value for f in fns)  # type: ignore[return-value]


def _built() -> Path:
    """The compiled kernel in the cache, built first if missing."""
    named = os.environ.get("CC")
    compiler = shutil.which(named) if named else shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        which = f"CC={named}" if named else "cc"
        raise RuntimeError(f"no C compiler ({which}) found: install gcc, or set CC")
    target = library_path(compiler)
    folder = target.parent
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _check_private(folder)
        _sweep(folder)
        with tempfile.TemporaryDirectory(dir=folder, prefix=TEMP) as tmp:
            out = Path(tmp) / target.name
            cmd = [compiler, *FLAGS, str(SOURCE), "-o", str(out)]
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
            )
            if done.returncode != 0:
                first = (done.stderr.strip().splitlines() or ["no output"])[0]
                raise RuntimeError(f"{compiler} could not build it ({first[:200]})")
            out.chmod(0o755)  # whatever the umask: _check_private refuses group-writable code
            os.replace(out, target)
    _check_private(folder)
    _check_private(target)
    return target


def _sweep(folder: Path) -> None:
    """Remove the temp folders of builds killed mid-way (SIGKILL skips their clean-up); one
    younger than a build's time limit may be another process's build in progress."""
    cutoff = time.time() - 2 * BUILD_TIMEOUT_S
    for old in folder.glob(f"{TEMP}*"):
        try:
            if old.is_dir() and not old.is_symlink() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:  # gone meanwhile: another process swept it
            pass


def library_path(compiler: str) -> Path:
    """Where the kernel built by `compiler` for this CPU and torch lives in the cache."""
    parts = [SOURCE.read_bytes(), compiler.encode(), " ".join(FLAGS).encode(), _cpu().encode(),
             torch.__version__.encode()]  # fmt: skip
    key = hashlib.sha256(b"\0".join(parts)).hexdigest()[:24]
    return cache_dir() / f"rnn-{key}.so"


def _check_private(path: Path) -> None:
    """Refuse code that someone else could have written."""
    st = path.stat()
    if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise RuntimeError(
            f"{path} is writable by other users or not owned by you; not loaded "
            "(remove it, or point DLX_CACHE_DIR at a private folder)"
        )


def _cpu() -> str:
    """What -march=native depends on: the CPU's model and flags."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return "\n".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags"))}))


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


class _NativeLSTM(torch.autograd.Function):
    @staticmethod
    @no_autocast
    def forward(
        ctx: Any,
        x: Tensor,
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor,
        b_hh: Tensor,
        mask: Tensor | None,
    ) -> Tensor:
        lib = library()[0]
        n, steps, emb = x.shape
        hid = w_hh.shape[1]
        xh, gates, cells, tanh_c, h = lstm_buffers(x, w_ih, b_ih + b_hh, hid)
        w_hh = w_hh.contiguous()
        mask = None if mask is None else mask.contiguous()
        lib.dlx_lstm_fwd(torch.get_num_threads(), steps, n, hid, _ptr(gates), _ptr(w_hh),
                         _ptr(cells), _ptr(tanh_c), xh[0, 0, emb:].data_ptr(), emb + hid,
                         n * (emb + hid), _ptr(h), _ptr(mask))  # fmt: skip
        ctx.save_for_backward(w_ih, w_hh, mask, xh, gates, cells, tanh_c)
        return h

    @staticmethod
    @no_autocast
    def backward(ctx: Any, grad_h: Tensor) -> tuple[Tensor | None, ...]:
        w_ih, w_hh, mask, xh, gates, cells, tanh_c = ctx.saved_tensors
        steps, n, hid = tanh_c.shape
        dh = grad_h.float().contiguous().clone()
        dc, dgates = torch.empty_like(dh), torch.empty_like(gates)  # (held: C writes them)
        library()[0].dlx_lstm_bwd(torch.get_num_threads(), steps, n, hid, _ptr(gates),
                                  _ptr(w_hh), _ptr(cells), _ptr(tanh_c), _ptr(mask), _ptr(dh),
                                  _ptr(dc), _ptr(dgates))  # fmt: skip
        return lstm_param_grads(ctx.needs_input_grad, dgates, w_ih, xh)
