"""Checkpoint files: everything a run needs to continue exactly where it stopped.

Saved: model, optimizer, scheduler and grad-scaler states, the loop position (epoch, batch
within the epoch, optimizer step), the running epoch sums, every RNG state (python, numpy,
torch, cuda) and the data-order generator, the history, callback states, the config and the
dlx version. Only tensors and plain Python values, so `torch.load(weights_only=True)` reads
it; anything else (a planted pickle payload) is refused without being run.
"""

from __future__ import annotations

import pickle
import random
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlx.errors import DlxError, WriteError

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
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path} is not a dlx checkpoint (no model state in it)")
    return ckpt


def _why_unloadable(path: Path, err: Exception) -> str:
    text = str(err)
    # weights_only refuses any global it does not know; the payload is never run.
    found = re.search(r"GLOBAL (\S+)", text)
    if isinstance(err, pickle.UnpicklingError) and found:
        return (
            f"checkpoint {path} holds Python objects ({found.group(1)}), not just weights; "
            "refused without running it. Only load checkpoints you trust"
        )
    if isinstance(err, (EOFError, zipfile.BadZipFile)) or "zip archive" in text:
        reason = text.strip().splitlines()[0].split(". ")[0] if text.strip() else "unexpected end"
        return f"checkpoint {path} is truncated or corrupt ({reason}); use an earlier one"
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
