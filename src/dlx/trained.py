"""A trained torch model back from its checkpoint alone, for `dlx predict` and `dlx export`:
the model its stored config builds, its weights, what its outputs mean (the task's kind)
and the description of its input (classes, shape, preprocessing) saved with it.

Checkpoints from before dlx saved that description get it from the stored config's data
set, when its files are still there; otherwise they are refused in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlx.core.errors import ConfigError, DlxError
from dlx.engine.checkpoint import CheckpointError

KINDS = ("classify", "binary", "reconstruct")


class Scores(nn.Module):
    """A model's class scores (or reconstruction) alone: the RBM models also return their
    free-energy gap, which only training uses."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out[0] if isinstance(out, tuple) else out


@dataclass
class Trained:
    path: Path  # the checkpoint
    config: Any  # its stored config (DictConfig), checked
    model: nn.Module  # in eval mode, on the CPU, returning scores only (Scores)
    description: dict[str, Any]  # dlx.core.preprocessing
    kind: str  # classify | binary | reconstruct


def checkpoint_file(ckpt: str) -> Path:
    """A checkpoint path, or a run dir: its best.pt, else last.pt."""
    path = Path(ckpt).expanduser()
    if path.is_dir():
        found = [path / "checkpoints" / n for n in ("best.pt", "last.pt")]
        found = [p for p in found if p.is_file()]
        if not found:
            raise ConfigError(f"ckpt={ckpt}: the folder holds no checkpoints/best.pt or last.pt")
        return found[0]
    if path.suffix == ".pt2":
        raise CheckpointError(
            f"ckpt={ckpt}: dlx does not load torch.export (.pt2) archives, whose loading "
            "unpickles Python objects; give the run's checkpoint or its .onnx export"
        )
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def task_kind(task: Any) -> str:
    """classify | binary | reconstruct: how a task's model outputs read."""
    from dlx.core.tasks import Binary, Classification, Reconstruction

    for cls, kind in ((Classification, "classify"), (Binary, "binary"),
                      (Reconstruction, "reconstruct")):  # fmt: skip
        if isinstance(task, cls):
            return kind
    raise ConfigError(
        f"task {type(task).__name__} is none of classify, binary, reconstruct: dlx cannot "
        "tell what its model's outputs mean"
    )


def load_trained(ckpt: str) -> Trained:
    from omegaconf import OmegaConf

    from dlx import guard
    from dlx.core.preprocessing import spec_of
    from dlx.core.targets import instantiate
    from dlx.engine.checkpoint import load_checkpoint, load_model_state
    from dlx.models import build_model

    path = checkpoint_file(ckpt)
    saved = load_checkpoint(path)
    if not saved.get("config"):
        raise CheckpointError(f"{path} carries no config; give a checkpoint written by dlx train")
    cfg = OmegaConf.create(saved["config"])
    guard.check_config(cfg)  # the stored config is data from disk: its targets too
    description = saved.get("data") or _rebuilt_description(cfg, path)
    model = build_model(cfg.model, spec_of(description))
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{path}: its model is not a torch model")
    load_model_state(model, saved["model"], path)
    kind = task_kind(instantiate(cfg.task, "task"))
    return Trained(path, cfg, Scores(model).eval(), description, kind)


def _local_data(cfg: Any) -> Any:
    """The run's data set, as its config says, from the files already here (no download:
    predict and export must not wait on, or fail by, the network)."""
    from omegaconf import OmegaConf

    from dlx.core.targets import instantiate

    node = OmegaConf.to_container(cfg.dataset, resolve=True)
    assert isinstance(node, dict)
    node["download"] = False
    return instantiate(OmegaConf.create(node), "dataset").load()


def _rebuilt_description(cfg: Any, path: Path) -> dict[str, Any]:
    """An older checkpoint's description, from its data set (if its files are there)."""
    from dlx.core.preprocessing import describe

    try:
        return describe(_local_data(cfg))
    except DlxError as err:
        raise CheckpointError(
            f"{path} was saved before dlx stored a run's preprocessing with it, and its "
            f"data set cannot be rebuilt to recover it ({err}); retrain it with this dlx"
        ) from None


def sample_inputs(trained: Trained, n: int) -> tuple[torch.Tensor, str]:
    """Up to n stored samples of the run's test split (else val, train) when its data set
    still loads; else n random ones of the right shape and range. (samples, where from)."""
    d = trained.description
    try:
        data = _local_data(trained.config)
        split_name, split = next(
            (k, s) for k in ("test", "val", "train") if (s := data.splits().get(k)) is not None
        )
        return split.take(slice(0, n)).x, f"the {split_name} split"
    except (DlxError, StopIteration, OSError):
        pass
    g = torch.Generator().manual_seed(0)
    prep = d["preprocessing"] or {}
    if d["vocab_size"] is not None:
        x = torch.randint(0, d["vocab_size"], (n, *d["input_shape"]), generator=g)
    elif prep.get("kind") == "image":
        x = torch.randint(0, prep["max_value"] + 1, (n, *d["input_shape"]), generator=g)
        x = x.to(torch.uint8)
    else:
        x = torch.rand((n, *d["input_shape"]), generator=g)
    return x, "random inputs (the data set does not load here)"
