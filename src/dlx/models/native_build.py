"""Builds and loads the LSTM's C loop (`rnn_native.c`, used by `rnn_native`).

Built on first use by the machine's C compiler (`$CC`, else `cc`) into
`$DLX_CACHE_DIR/native/` (default `~/.cache/dlx/native`), one file per source, compiler, CPU
and torch version, written to a temp name and renamed; loaded with ctypes. The C code calls
torch's own BLAS (MKL's `sgemm_`) and runs on torch's OpenMP threads, so it needs torch's
Linux x86-64 build. A cached library is loaded only if this user owns it and nobody else can
write it or its folder: it is code, not data.

Why C and not torch.utils.cpp_extension: the kernel needs no torch headers, so it builds in
~0.2 s with any C compiler, against ~1 min for a torch extension.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("rnn_native.c")
FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-fopenmp")
_P, _I, _L = ctypes.c_void_p, ctypes.c_int, ctypes.c_long
TEMP = "build-"  # a build's temp folder in the cache, renamed into place when done
BUILD_TIMEOUT_S = 120


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
    lib.dlx_embed_fwd.argtypes = [_I] * 4 + [_P, _L, _P, _P, _P, _P, _L]
    lib.dlx_embed_fwd.restype = _L
    lib.dlx_embed_bwd.argtypes = [_I] * 4 + [_P, _L, _L, _P, _P, _P, _P]
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
