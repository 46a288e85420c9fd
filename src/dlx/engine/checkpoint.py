"""Checkpoint files: everything a run needs to continue exactly where it stopped, verified.

A checkpoint holds the model, optimizer and grad-scaler states, the run state (epoch, batch
in the epoch, optimizer step, running sums, history), the data order, each part's state
(scheduler, best metric, early stopping), every RNG (python, numpy, torch, cuda), the config
that produced it, what the model takes as input (`data`: classes, input shape, scale and the
data set's preprocessing, so `dlx predict` needs nothing else) and the dlx version, plus a
checksum of all of it. Only tensors and plain
Python values, so `torch.load(weights_only=True)` reads it; anything else (a planted pickle
payload) is refused without being run. The checksum catches what loads but is not what was
written (flipped bytes in the weights): such a file is refused in one line.

Writes are atomic (temp file, fsync, rename). `last.pt` keeps its predecessor as
`previous.pt`, so a resume whose last.pt turns out damaged falls back to the one before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlx import __version__
from dlx.core.errors import DlxError, WriteError
from dlx.core.io import atomic_save, why_unloadable
from dlx.core.preprocessing import problem

log = logging.getLogger("dlx")

FORMAT = 2
PREVIOUS = "previous.pt"  # last.pt's predecessor


class CheckpointError(DlxError):
    """A checkpoint that cannot be used: missing, corrupt, unsafe, or for another model."""


# -- RNG states ---------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        # numpy's state holds an ndarray, which weights_only loading refuses: keep a tensor
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # One GPU per rank, all seeded alike: reading every GPU's state would open a
            # CUDA context on each of them from every rank.
            state["cuda_device"] = torch.cuda.get_rng_state()
        else:
            state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_tuples(state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "cuda_device" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda_device"])  # onto this rank's current device


def _tuples(value: Any) -> Any:
    # random.setstate wants tuples all the way down; a round trip may give lists.
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


# -- the checksum ---------------------------------------------------------------------------------


def checksum(ckpt: dict[str, Any]) -> str:
    """A hash of every entry but the checksum itself: tensors' dtype, shape and bytes, and
    the plain values around them, in key order."""
    h = hashlib.blake2b(digest_size=16)
    _feed(h, {k: v for k, v in ckpt.items() if k != "checksum"})
    return h.hexdigest()


def _feed(h: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        h.update(b"{")
        for key in sorted(value, key=repr):
            h.update(repr(key).encode())
            _feed(h, value[key])
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for item in value:
            _feed(h, item)
        h.update(b"]")
    else:
        h.update(repr(value).encode())


# -- writing ---------------------------------------------------------------------------------


def save_checkpoint(
    ckpt: dict[str, Any],
    path: Path,
    before_rename: Callable[[], None] | None = None,
    resume_hint: str = "",
) -> None:
    """Write `ckpt` (with its checksum) to `path` atomically; a last.pt's predecessor is
    kept as previous.pt. A failed write says what is kept and how to go on."""
    ckpt = {**ckpt, "checksum": checksum(ckpt)}

    def keep_previous() -> None:
        if before_rename is not None:
            before_rename()
        if path.name == "last.pt" and path.is_file():
            os.replace(path, path.with_name(PREVIOUS))

    try:
        atomic_save(ckpt, path, keep_previous)
    except WriteError as err:
        if path.is_file():  # the temp file is gone, the previous checkpoint untouched
            kept = f"the previous checkpoint {path} is kept"
            if resume_hint:
                kept += f"; after the fix, resume with: {resume_hint}"
        else:
            kept = "no earlier checkpoint of this run exists"
        raise WriteError(f"{err}; {kept}") from None


# -- reading ---------------------------------------------------------------------------------


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False
) -> dict:
    """Load a dlx checkpoint safely and verify it, turning every failure into one line.

    mmap=True maps the tensors instead of reading them, and skips the checksum (which would
    read them all): for a look at the config only.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    mmap = mmap and zipfile.is_zipfile(path)  # torch maps only its zip format
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises many types for bad files; all mean "unusable"
        raise CheckpointError(_why_unloadable(path, err)) from None
    why = _not_a_checkpoint(ckpt)
    if why:
        raise CheckpointError(
            f"{path} is not a dlx checkpoint ({why}); give a .pt file written by dlx train "
            "(<run dir>/checkpoints/last.pt or best.pt)"
        )
    if not mmap and "checksum" in ckpt and checksum(ckpt) != ckpt["checksum"]:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: its contents do not match the checksum written "
            "with it (the file was damaged or changed after it was saved); use another "
            f"checkpoint (the run's {PREVIOUS} or best.pt)"
        )
    return ckpt


# The entries a dlx checkpoint may hold besides `model`, and their types (None where the
# trainer writes None). Each is checked when present, so a file that merely loads (a bare
# state_dict, a tensor, a dict of strings) is refused here, not by a traceback later.
_ENTRIES: dict[str, tuple[type, ...]] = {
    "format": (int,),
    "optimizer": (dict,),
    "scaler": (dict, type(None)),
    "epoch": (int,),
    "step": (int,),
    "state": (dict,),
    "batches": (dict,),
    "parts": (dict,),
    "rng": (dict,),
    "ranks": (list, type(None)),
    "config": (dict,),
    "data": (dict,),  # what predict needs (classes, input shape, preprocessing)
    "dlx_version": (str,),
    "checksum": (str,),
    # format 1 (dlx before the spine): read for its weights and config only
    "scheduler": (dict, type(None)),
    "loop": (dict, type(None)),
    "history": (list,),
    "callbacks": (dict,),
    "early_stopping_best_model": (dict, type(None)),
}


def _not_a_checkpoint(ckpt: Any) -> str | None:
    """Why a loaded object is not a dlx checkpoint (None: it is one)."""
    if not isinstance(ckpt, dict):
        return f"it holds a {type(ckpt).__name__}, not a dict"
    if "model" not in ckpt:
        return "no 'model' entry: a bare state_dict is not one"
    why = _not_a_state_dict(ckpt["model"], "model")
    if why:
        return why
    for key, types in _ENTRIES.items():
        if key in ckpt and not isinstance(ckpt[key], types):
            names = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            return f"'{key}' is a {type(ckpt[key]).__name__}, not a {names}"
    if "data" in ckpt and problem(ckpt["data"]):
        return f"'data' does not describe a model's input: {problem(ckpt['data'])}"
    for name, rows in (("history", ckpt.get("history")), ("state.rows", _rows(ckpt))):
        if rows is not None and not (
            isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
        ):
            return f"'{name}' is not a list of dicts"
    return None


def _rows(ckpt: dict[str, Any]) -> Any:
    state = ckpt.get("state")
    return state.get("rows") if isinstance(state, dict) else None


def _not_a_state_dict(state: Any, name: str) -> str | None:
    if not isinstance(state, dict):
        return f"'{name}' is a {type(state).__name__}, not a state dict"
    for key, value in state.items():
        if not isinstance(key, str):
            return f"'{name}' has the key {key!r} ({type(key).__name__}), not a parameter name"
        if not isinstance(value, torch.Tensor):
            return f"{name}[{key!r}] is a {type(value).__name__}, not a tensor"
    return None


def _why_unloadable(path: Path, err: Exception) -> str:
    kind, detail = why_unloadable(err)
    if kind == "objects":  # weights_only refuses any global it does not know: nothing ran
        return (
            f"checkpoint {path} holds Python objects ({detail}), not just weights; "
            "refused without running it. Only load checkpoints you trust"
        )
    if kind == "corrupt":
        return f"checkpoint {path} is truncated or corrupt ({detail}); use an earlier one"
    return f"{path} is not a checkpoint (it does not load as one); give a .pt file written by dlx"


def load_model_state(model: torch.nn.Module, state: dict, path: str | Path) -> None:
    """load_state_dict, with a mismatch explained in one line."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append("shape mismatch (checkpoint vs model): " + ", ".join(wrong[:3]))
        if missing:
            parts.append("missing: " + ", ".join(missing[:3]))
        if unexpected:
            parts.append("unexpected: " + ", ".join(unexpected[:3]))
        raise CheckpointError(
            f"checkpoint {path} does not fit this model and data ({'; '.join(parts)}); "
            "use the model and dataset options it was trained with"
        )
    model.load_state_dict(state)


def kept_checkpoint(trainer: Any) -> str:
    """What a run that stops now leaves to go back to, for its error line."""
    last = trainer.checkpoint_path()
    if last is not None and trainer.cfg.checkpoint and last.exists():
        return f"the last checkpoint written before it is {last} (verified finite)"
    return "no checkpoint was written before it"


def dlx_version() -> str:
    return __version__
