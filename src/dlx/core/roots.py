"""The root schema of each command's own config (configs/<command>.yaml), besides train's
`RunConfig`: the keys the command adds (`ckpt=`, `split=`, `input=` ...) with their docs.

Registered in Hydra's ConfigStore as `schema/<name>` with the group schemas
(`dlx.core.schemas`) by `register_configs`. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from dlx.core.errors import ConfigError
from dlx.core.fields import setting
from dlx.core.schemas import RunConfig
from dlx.core.schemas import register_configs as register_groups
from dlx.core.schemas_runs import RunsConfig

EXPORT_FORMATS = ("onnx", "torchscript", "pt2")


@dataclass
class EvalConfig(RunConfig):
    ckpt: str = setting(MISSING, "the checkpoint to evaluate (a run dir: its best, else last)")
    split: str = setting("test", "test | val | train")


@dataclass
class VizCommandConfig(RunConfig):
    run_dir: str = setting(MISSING, "the run dir (or sweep dir) whose figures to draw")
    ckpt: str = setting("last", "last | best | a checkpoint path")


@dataclass
class InfoOptions:
    graph: bool = setting(False, "also draw the architecture with graphviz")
    graph_file: str = setting("model.svg", "where the graph goes: .svg | .png | .pdf | .dot")


@dataclass
class InfoConfig(RunConfig):
    info: InfoOptions = field(default_factory=InfoOptions)


@dataclass
class PredictConfig:
    """`dlx predict`: only what it needs; the model, classes and preprocessing come from
    the checkpoint (or an export's metadata), never from the groups."""

    ckpt: str = setting(
        MISSING,
        "last.pt | best.pt | a run dir (its best, else last; a scikit-learn run's "
        "model.npz) | an exported .onnx (with its .onnx.json)",
    )
    input: str | None = setting(None, "images or texts: a file, a folder or a glob ('x/*.png')")
    text: str | None = setting(None, "one text to classify (text runs): 'text=\"a fine film\"'")
    top_k: int = setting(3, "the k most probable classes shown and written")
    column: Any = setting(None, "CSV/TSV/JSONL input: the text's column; null = text (or 0)")
    header: bool = setting(True, "CSV/TSV input has a header row")
    batch_size: int = setting(256, "inputs per forward pass")
    accelerator: str | None = setting(None, "null = the run's trainer.accelerator; cpu | cuda")
    print_rows: int = setting(20, "table rows printed (predictions.csv holds them all)")
    paths: Any = None

    def check(self) -> None:
        for name in ("top_k", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be a positive integer")
        if self.print_rows < 0:
            raise ConfigError(f"print_rows={self.print_rows} must be >= 0")
        if (self.input is None) == (self.text is None):
            raise ConfigError(
                "give what to predict on: input=<file | folder | glob> or text='\"...\"' "
                "(one of them)"
            )


@dataclass
class ExportConfig:
    """`dlx export`: a checkpoint's model as a file for serving, with its metadata."""

    ckpt: str = setting(MISSING, "last.pt | best.pt | a run dir (its best, else last)")
    format: str = setting("onnx", "onnx | torchscript | pt2 (torch.export)")
    out: str | None = setting(None, "the file to write; null = <export run dir>/model.<ext>")
    samples: int = setting(100, "inputs of the parity check (the test split's, else random)")
    atol: float = setting(1e-4, "the largest difference from the checkpoint's outputs allowed")
    paths: Any = None

    def check(self) -> None:
        if self.format not in EXPORT_FORMATS:
            raise ConfigError(f"format={self.format} must be one of {', '.join(EXPORT_FORMATS)}")
        if self.samples < 1:
            raise ConfigError(f"samples={self.samples} must be a positive integer")
        if not self.atol > 0:
            raise ConfigError(f"atol={self.atol} must be > 0")


# name in the ConfigStore (schema/<name>) -> root schema; COMMAND_ROOTS: command -> that name
ROOTS: dict[str, Any] = {
    "eval": EvalConfig,
    "viz_command": VizCommandConfig,
    "info": InfoConfig,
    "predict": PredictConfig,
    "export": ExportConfig,
    "runs": RunsConfig,
}
COMMAND_ROOTS = {"eval": "eval", "viz": "viz_command", "info": "info", "predict": "predict",
                 "export": "export", "runs": "runs"}  # fmt: skip

_registered = False


def register_configs() -> None:
    """Store the group schemas and the commands' root schemas (idempotent)."""
    global _registered
    register_groups()
    if _registered:
        return
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name, schema in ROOTS.items():
        cs.store(group="schema", name=name, node=schema)
    _registered = True
