"""`dlx export ckpt=<checkpoint | run dir> format=onnx|torchscript|pt2 [out=<file>]`.

The checkpoint's model (in eval mode, on the CPU, its class scores only) as one file for
serving, with `<file>.json` beside it: the classes, the input's shape (batch axis first,
any size) and dtype, the task's output link and the run's preprocessing. Then a parity
check: the exported model and the checkpoint's on the same inputs (the run's test split
where its data set still loads, else random inputs of the right shape), and the largest
difference printed; above `atol` the command fails (the files stay, to inspect).

- onnx: torch's exporter (`torch.onnx.export(dynamo=True)`, needs `dlx[export]`), a
  dynamic batch axis; checked with onnxruntime. `dlx predict` takes the .onnx too.
- torchscript: `torch.jit.trace` (deprecated by torch; for servers that still load it).
- pt2: `torch.export` (`torch.export.save`). dlx itself never loads a .pt2: its loader
  unpickles Python objects (`torch.export.load` falls back to `weights_only=False`), so
  its check runs the in-memory program that was saved.
Files are written atomically (temp file, then rename).
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from dlx.core.data import to_input
from dlx.core.errors import ConfigError, DlxError

log = logging.getLogger("dlx")

SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "pt2": ".pt2"}
LINK = {"classify": "softmax", "binary": "sigmoid", "reconstruct": None}


class ParityError(DlxError):
    """The exported model's outputs differ from the checkpoint's by more than atol."""

    exit_code = 1


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The exporters' progress prints and deprecation warnings, kept off the console."""
    names = ("torch.onnx", "torch.export", "onnxscript", "onnx_ir", "onnxruntime")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    out = io.StringIO()
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(out):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _batch_dim() -> dict[int, Any]:
    return {0: torch.export.Dim("batch")}


def write_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> Any:
    from dlx.core.io import atomic_write_bytes

    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError(
            "format=onnx needs onnx, onnxscript and onnxruntime: pip install 'dlx[export]'"
        ) from None
    with quiet():
        program = torch.onnx.export(
            model, (example,), dynamo=True, input_names=["input"], output_names=["output"],
            dynamic_shapes=(_batch_dim(),), verbose=False,
        )  # fmt: skip
        blob = program.model_proto.SerializeToString()
    atomic_write_bytes(blob, path)
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(np.asarray(session.run(None, {"input": x.numpy()})[0]))


def write_torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path) -> Any:
    from dlx.core.io import atomic_write_bytes

    with quiet():
        traced = torch.jit.trace(model, (example,))
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
        blob = buf.getvalue()
        loaded = torch.jit.load(io.BytesIO(blob))  # the bytes just written, not the file
    atomic_write_bytes(blob, path)

    def run(x: torch.Tensor) -> torch.Tensor:
        with quiet():
            return loaded(x)

    return run


def write_pt2(model: torch.nn.Module, example: torch.Tensor, path: Path) -> Any:
    from dlx.core.io import atomic_write_bytes

    with quiet():
        program = torch.export.export(model, (example,), dynamic_shapes=(_batch_dim(),))
        buf = io.BytesIO()
        torch.export.save(program, buf)
    atomic_write_bytes(buf.getvalue(), path)
    return program.module()


WRITERS = {"onnx": write_onnx, "torchscript": write_torchscript, "pt2": write_pt2}


def export_model(
    trained: Any, fmt: str, path: Path, samples: int = 100, atol: float = 1e-4
) -> dict[str, Any]:
    """Write `trained` (dlx.trained.Trained) as `fmt` to `path` and its metadata to
    `<path>.json`; the parity check's result. ParityError past atol."""
    from dlx import __version__
    from dlx.core.io import write_json
    from dlx.trained import sample_inputs

    d = trained.description
    stored, source = sample_inputs(trained, samples)
    x = to_input(stored, d["scale"])
    x = x.float() if x.is_floating_point() else x.long()
    # A batch of two to trace: a size of 1 would be taken for a constant.
    example = x[:2] if len(x) >= 2 else torch.cat([x, x])
    model = trained.model.cpu().eval()
    with torch.inference_mode():
        expected = model(x).float()
    run = WRITERS[fmt](model, example, path)
    with torch.inference_mode():
        got = run(x).float()
    diff = float((got - expected).abs().max()) if got.shape == expected.shape else float("inf")
    meta = {
        "format": fmt,
        "file": path.name,
        "task": trained.kind,
        "input": {
            "name": "input",
            "dtype": str(x.dtype).removeprefix("torch."),
            "shape": ["batch", *d["input_shape"]],
        },
        "output": {
            "name": "output",
            "link": LINK[trained.kind],
            "shape": ["batch", *expected.shape[1:]],
        },
        "data": d,
        "checkpoint": str(trained.path.resolve()),
        "parity": {"samples": len(x), "inputs": source, "max_abs_diff": diff},
        "dlx_version": __version__,
    }
    write_json(meta, path.with_name(path.name + ".json"))
    if not diff <= atol:
        raise ParityError(
            f"the exported model's outputs differ from the checkpoint's by up to {diff:.3g} "
            f"(> atol={atol}) on {len(x)} samples ({source}); the files are kept in "
            f"{path.parent} to inspect (atol=... accepts more)"
        )
    return meta


def export(cfg: DictConfig) -> dict[str, Any]:
    from hydra.core.hydra_config import HydraConfig

    from dlx.core.roots import ExportConfig
    from dlx.trained import load_trained

    t0 = time.perf_counter()
    values = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(values, dict)
    values.pop("paths", None)
    opts = ExportConfig(**values)
    opts.check()
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    path = Path(opts.out).expanduser() if opts.out else run_dir / f"model{SUFFIX[opts.format]}"
    trained = load_trained(opts.ckpt)
    meta = export_model(trained, opts.format, path, opts.samples, opts.atol)
    parity = meta["parity"]
    print(
        f"dlx export: {path} ({opts.format}) + {path.name}.json; largest difference from the "
        f"checkpoint {parity['max_abs_diff']:.3g} on {parity['samples']} samples "
        f"({parity['inputs']}) "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    return meta


def main(argv: list[str]) -> None:
    from dlx.command import run_command

    run_command("export", export, argv)
