"""Checkpoint files: everything a run needs to continue exactly where it stopped.

Saved: model, optimizer, scheduler and grad-scaler states, the loop position (epoch, batch
within the epoch, optimizer step), the running epoch sums, every RNG state (python, numpy,
torch, cuda) and the data-order generator, the history, callback states, the config and the
dlx version. Only tensors and plain Python values, so `torch.load(weights_only=True)` reads
it; anything else (a planted pickle payload) is refused without being run.
"""

from __future__ import annotations

import random
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlx.errors import DlxError, WriteError
from dlx.io import why_unloadable

FORMAT = 1


class CheckpointError(DlxError):
    """A checkpoint that cannot be used: missing, corrupt, unsafe, or for another model."""


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


def save_checkpoint(
    ckpt: dict[str, Any],
    path: Path,
    before_rename: Callable[[], None] | None = None,
    resume_hint: str = "",
) -> None:
    """Write `ckpt` to `path` atomically; a failed write says what is kept and how to go on."""
    from dlx.io import atomic_save

    try:
        atomic_save(ckpt, path, before_rename)
    except WriteError as err:
        if path.is_file():  # the temp file is gone, the previous checkpoint untouched
            kept = f"the previous checkpoint {path} is kept"
            if resume_hint:
                kept += f"; after the fix, resume with: {resume_hint}"
        else:
            kept = "no earlier checkpoint of this run exists"
        raise WriteError(f"{err}; {kept}") from None


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False
) -> dict:
    """Load a dlx checkpoint safely, turning every failure into one clear line.

    mmap=True maps the tensors instead of reading them: cheap when only the config is needed.
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
    return ckpt


# The entries a dlx checkpoint may hold besides `model`, and their types (None where the
# trainer writes None). Each is checked when present, so a file that merely loads (a bare
# state_dict, a tensor, a dict of strings) is refused here, not by a traceback later.
_ENTRIES: dict[str, tuple[type, ...]] = {
    "format": (int,),
    "optimizer": (dict,),
    "scheduler": (dict, type(None)),
    "scaler": (dict, type(None)),
    "epoch": (int,),
    "step": (int,),
    "loop": (dict, type(None)),
    "rng": (dict,),
    "ranks": (list, type(None)),
    "history": (list,),
    "callbacks": (dict,),
    "early_stopping_best_model": (dict, type(None)),
    "config": (dict,),
    "dlx_version": (str,),
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
    rows = ckpt.get("history") or []
    if not all(isinstance(r, dict) for r in rows):
        return "'history' is not a list of dicts"
    best = ckpt.get("early_stopping_best_model")
    return None if best is None else _not_a_state_dict(best, "early_stopping_best_model")


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
