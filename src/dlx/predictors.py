"""What `dlx predict` runs on stored samples, from what `ckpt=` names:

- a dlx checkpoint (or a run dir: its best.pt, else last.pt): the torch model, on the
  run's device (`accelerator=` to change it), loaded with `weights_only=True`;
- an `.onnx` file written by `dlx export`, with its metadata `<file>.onnx.json`
  (onnxruntime; a protobuf file holds no Python objects);
- a scikit-learn run's dir (or its model.npz): its forward pass recomputed in numpy from
  the learned arrays (`np.load(allow_pickle=False)`) and model.json.

Each gives the description of its input (dlx/core/preprocessing.py), what its outputs mean
(classify | binary | reconstruct) and `outputs(x)` for a batch of stored samples.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlx.core.data import to_input
from dlx.core.errors import ConfigError, DataError
from dlx.engine.checkpoint import CheckpointError
from dlx.trained import KINDS


@dataclass
class Predictor:
    source: Path
    description: dict[str, Any]
    kind: str  # classify | binary | reconstruct
    forward: Callable[[torch.Tensor], np.ndarray]  # stored samples -> outputs
    device: str
    # logits (torch, onnx: the task's link makes probabilities), or scikit-learn's
    # probabilities, or decision scores (estimators without probabilities: Perceptron)
    outputs_are: str = "logits"

    def outputs(self, x: torch.Tensor, batch_size: int) -> np.ndarray:
        parts = [self.forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return np.concatenate(parts)


def load_predictor(ckpt: str, accelerator: str | None) -> Predictor:
    path = Path(ckpt).expanduser()
    if path.suffix == ".onnx":
        return _onnx(path)
    if path.suffix == ".npz" or (path.is_dir() and (path / "model.npz").is_file()):
        return _sklearn(path.parent if path.suffix == ".npz" else path)
    return _torch(ckpt, accelerator)


def _torch(ckpt: str, accelerator: str | None) -> Predictor:
    from dlx.engine.runtime import resolve_device
    from dlx.trained import load_trained

    trained = load_trained(ckpt)
    device = resolve_device(accelerator or trained.config.trainer.get("accelerator", "auto"))
    model = trained.model.to(device)
    scale = trained.description["scale"]

    @torch.inference_mode()
    def forward(x: torch.Tensor) -> np.ndarray:
        out = model(to_input(x.to(device), scale))
        return out.float().cpu().numpy()

    return Predictor(trained.path, trained.description, trained.kind, forward, str(device))


def metadata_file(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _read_json(path: Path, missing: str) -> Any:
    """A JSON file's value; DataError in one line: `missing` if there is no file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(missing) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path} is not readable JSON ({err})") from None


def read_metadata(path: Path) -> dict[str, Any]:
    """An export's metadata (JSON: data), checked."""
    from dlx.core.preprocessing import problem

    meta_path = metadata_file(path)
    meta = _read_json(
        meta_path,
        f"{path} comes without its metadata {meta_path.name} (classes, preprocessing); "
        "export it again with dlx export",
    )
    why = None if isinstance(meta, dict) else "not an object"
    why = why or problem(meta.get("data"))
    if why is None and meta.get("task") not in KINDS:
        why = f"task is not one of {', '.join(KINDS)}"
    if why is None and (meta.get("input") or {}).get("dtype") not in ("float32", "int64"):
        why = "input.dtype is not float32 or int64"
    if why:
        raise DataError(f"{meta_path} is not the metadata dlx export writes ({why})")
    return meta


def _onnx(path: Path) -> Predictor:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError(
            "predicting from an .onnx file needs onnxruntime: pip install 'dlx[export]'"
        ) from None
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    meta = read_metadata(path)
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own types for a file it cannot parse
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise CheckpointError(f"{path} is not a readable ONNX model ({first})") from None
    name = session.get_inputs()[0].name
    scale, dtype = meta["data"]["scale"], np.dtype(meta["input"]["dtype"])

    def forward(x: torch.Tensor) -> np.ndarray:
        feed = to_input(x, scale).numpy().astype(dtype, copy=False)
        return np.asarray(session.run(None, {name: feed})[0], dtype=np.float32)

    return Predictor(path, meta["data"], meta["task"], forward, "cpu (onnxruntime)")


def _sklearn(run_dir: Path) -> Predictor:
    from dlx.baselines.forward import probabilistic, scores
    from dlx.core.io import read_npz
    from dlx.core.preprocessing import problem

    meta_path = run_dir / "model.json"
    meta = _read_json(
        meta_path,
        f"{run_dir} holds model.npz but no model.json: not a scikit-learn run, or one "
        "trained before dlx predict existed (retrain it with this dlx)",
    )
    steps = meta.get("steps") if isinstance(meta, dict) else None
    why = problem(meta.get("data")) if isinstance(meta, dict) else "not an object"
    if why is None and (
        not isinstance(steps, list)
        or not steps
        or not all(
            isinstance(st, dict)
            and isinstance(st.get("prefix"), str)
            and isinstance(st.get("type"), str)
            and isinstance(st.get("settings"), dict)
            for st in steps
        )
    ):
        why = "steps is not a list of {prefix, type, settings}"
    if why:
        raise DataError(f"{meta_path} is not the model.json dlx train writes ({why})")
    arrays = read_npz(run_dir / "model.npz")
    scale = meta["data"]["scale"]
    last = steps[-1]["prefix"]
    classes = arrays.get(f"{last}classes_")
    num_classes = meta["data"]["num_classes"]

    def forward(x: torch.Tensor) -> np.ndarray:
        flat = x.reshape(len(x), -1).numpy()
        flat = flat.astype(np.float64) if not np.issubdtype(flat.dtype, np.floating) else flat
        if scale is not None and scale != 1.0:  # as the run scaled them (as_arrays)
            flat = flat * flat.dtype.type(scale)
        got, is_prob = scores(arrays, steps, flat)
        # one column per class of the data, though a class absent from train has none
        full = np.full((len(flat), num_classes), 0.0 if is_prob else -np.inf)
        full[:, classes.astype(np.int64) if classes is not None else slice(None)] = got
        return full

    outputs = "probabilities" if probabilistic(steps) else "scores"
    return Predictor(run_dir / "model.npz", meta["data"], "classify", forward, "cpu", outputs)
