"""A run as the figures see it: its config, final metrics and per-epoch history, and on
demand its data, torch model, task and predictions.

Built in the training process from the objects in memory (`dlx train`), or from a finished
run's directory (`dlx viz`): `.hydra/config.yaml` or the checkpoint's config, metrics.json,
metrics.csv, checkpoints/last.pt (or best.pt, loaded with weights_only=True), and for
scikit-learn runners their predictions.npz / model.npz.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dlx.core.errors import ConfigError
from dlx.viz.registry import Skip
from dlx.viz.style import image_shape

SPLITS = ("test", "val", "train")  # the split figures show: the first the run has


def read_history(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [
            {k: float(v) for k, v in row.items() if v not in ("", None)}
            for row in csv.DictReader(f)
        ]


class RunView:
    def __init__(
        self,
        cfg: Any,
        run_dir: Path,
        metrics: dict[str, Any] | None = None,
        history: list[dict[str, float]] | None = None,
        model: Any = None,
        data: Any = None,
        state: dict[str, Any] | None = None,
        predictions: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.metrics = metrics or {}
        self.history = (
            history if history is not None else read_history(self.run_dir / "metrics.csv")
        )
        self.options = viz_options(cfg)
        self._model = model
        self._data = data
        self._state = state  # a checkpoint's model state, built into a model on first use
        self._task: Any = None
        self._predictions: dict[str, np.ndarray] = dict(predictions or {})

    # -- from a run dir ------------------------------------------------------------------

    @classmethod
    def from_dir(
        cls, run_dir: Path, ckpt: str = "last", configure: Callable[[dict], Any] | None = None
    ) -> RunView:
        """A finished run, from its files; `configure` turns its stored config into the one
        to draw with (dlx viz applies the command line's changes)."""
        from omegaconf import OmegaConf

        run_dir = Path(run_dir)
        path = checkpoint_path(run_dir, ckpt)
        saved: dict[str, Any] = {}
        if path is not None:
            from dlx.engine.checkpoint import load_checkpoint

            saved = load_checkpoint(path)
        if saved.get("config"):  # exactly what the weights were trained with (a stage's too)
            stored = saved["config"]
        elif (run_dir / ".hydra" / "config.yaml").is_file():
            stored = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "config.yaml"))
        else:
            raise ConfigError(
                f"{run_dir} is not a dlx run dir (no .hydra/config.yaml, no checkpoint); give "
                "the folder dlx train wrote (outputs/train/<date>/<time>)"
            )
        cfg = configure(stored) if configure is not None else OmegaConf.create(stored)
        from dlx.guard import check_config

        check_config(cfg)  # a stored config is data from disk: its targets are checked too
        metrics_file = run_dir / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        rows = (saved.get("state") or {}).get("rows", saved.get("history"))
        history = read_history(run_dir / "metrics.csv") or list(rows or [])
        return cls(cfg, run_dir, metrics, history, state=saved.get("model"))

    # -- what the run has ------------------------------------------------------------------

    @property
    def data(self) -> Any:
        if self._data is None and self.cfg.get("dataset") is not None:
            from dlx.core.targets import instantiate

            self._data = instantiate(self.cfg.dataset, "dataset").load()
        return self._data

    @property
    def spec(self) -> Any:
        if self._data is not None:
            return self._data.spec
        if self.cfg.get("dataset") is None:
            raise Skip("no data set")
        from dlx.core.targets import instantiate

        return instantiate(self.cfg.dataset, "dataset").spec

    @property
    def model(self) -> Any:
        """The torch model, or None (a runner: scikit-learn, Q-learning)."""
        if self._model is None and self._state is not None:
            from dlx.engine.checkpoint import load_model_state
            from dlx.models import build_model

            model = build_model(self.cfg.model, self.spec, restore=True)
            load_model_state(model, self._state, self.run_dir)
            self._model, self._state = model, None
        return self._model if _is_torch(self._model) else None

    @property
    def task(self) -> Any:
        if self._task is None and self.cfg.get("task") is not None:
            from dlx.core.targets import instantiate

            self._task = instantiate(self.cfg.task, "task")
        return self._task

    @property
    def model_name(self) -> str:
        """The model's class (and its arch: model=torchvision); a scikit-learn runner's
        estimator (or pipeline steps)."""
        model = self.cfg.get("model") or {}
        estimator = model.get("estimator")
        if hasattr(estimator, "get") and estimator.get("_target_") is None:
            return " -> ".join(
                _leaf(step.get("_target_", name)) for name, step in estimator.items()
            )
        if hasattr(estimator, "get"):
            return _leaf(estimator.get("_target_"))
        name = _leaf(model.get("_target_", "model"))
        arch = model.get("arch")  # model=torchvision: which network
        return f"{name} {arch}" if isinstance(arch, str) else name

    def require_model(self) -> Any:
        model = self.model
        if model is None:
            raise Skip("not a torch model")
        return model

    def predictions_file(self) -> Path | None:
        path = self.run_dir / "predictions.npz"
        return path if path.is_file() else None

    def require_classifier(self) -> None:
        if self.model is not None:
            if "acc" not in getattr(self.task, "metric_names", ()):
                raise Skip("not a classifier")
        elif self.predictions_file() is None:
            raise Skip("no predictions (not a classifier)")

    def require_images(self) -> tuple[int, int, int]:
        chw = image_shape(self.spec)
        if chw is None:
            raise Skip("inputs are not images")
        return chw

    def eval_split(self) -> tuple[str, Any]:
        """The split figures show: test, else val, else train."""
        splits = self.data.splits()
        name = next(s for s in SPLITS if s in splits)
        return name, splits[name]

    # -- torch helpers -----------------------------------------------------------------------

    @property
    def device(self) -> Any:
        import torch

        param = next(iter(self.model.parameters()), None) if self.model is not None else None
        return param.device if param is not None else torch.device("cpu")

    def inputs(self, split: Any, n: int | None = None, start: int = 0) -> Any:
        """Model inputs (scaled floats) of samples start..start+n of a split, on the model's
        device."""
        from dlx.core.data import to_input

        x = split.take(slice(start, None if n is None else start + n)).x
        return to_input(x.to(self.device), self.data.scale)

    def forward(self, x: Any, fn: Any = None) -> Any:
        """The model (or one of its methods, `fn`) on x, in eval mode without gradients."""
        import torch

        model = self.model
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                return (fn or model)(x)
        finally:
            model.train(was_training)

    def predict(self, name: str) -> np.ndarray:
        """Predicted labels of a whole split (cached)."""
        if name in self._predictions:
            return self._predictions[name]
        if self.model is None:
            path = self.predictions_file()
            if path is None:
                raise Skip("no predictions saved for this run")
            from dlx.core.io import read_npz

            saved = read_npz(path)
            if name not in saved:
                raise Skip(f"no {name} predictions saved for this run")
            labels = saved[name]
        else:
            split = self.data.splits()[name]
            # The run's own evaluation batch: what fits its device (1024 photos through a
            # resnet at 224x224 would take gigabytes).
            trainer = self.cfg.get("trainer") or {}
            batch = int(trainer.get("eval_batch_size") or trainer.get("batch_size") or 1024)
            parts = [
                self.task.predict(self.forward(self.inputs(split, batch, i))).cpu()
                for i in range(0, len(split), batch)
            ]
            labels = np.concatenate([p.numpy() for p in parts]) if parts else np.zeros(0, int)
        self._predictions[name] = labels
        return labels

    def labels(self, name: str) -> np.ndarray:
        return self.data.splits()[name].y.detach().cpu().numpy()

    def class_names(self) -> list[str]:
        spec = self.spec
        return list(spec.class_names) or [str(i) for i in range(spec.num_classes)]


def viz_options(cfg: Any) -> dict[str, int]:
    """The figure settings of a run's config, defaults from the schema (a run written
    before a setting existed lacks it)."""
    from dlx.core.schemas import VizConfig

    viz = cfg.get("viz") or {}
    defaults = VizConfig()
    keys = ("samples", "feature_map_inputs", "max_filters", "max_conv_layers", "dpi")
    return {k: int(viz.get(k) or getattr(defaults, k)) for k in keys}


def checkpoint_path(run_dir: Path, ckpt: str = "last") -> Path | None:
    """`last` (then best), `best` (then last), or a path; None when the run has none."""
    folder = Path(run_dir) / "checkpoints"
    if ckpt in ("last", "best"):
        order = ["last.pt", "best.pt"] if ckpt == "last" else ["best.pt", "last.pt"]
        return next((folder / n for n in order if (folder / n).is_file()), None)
    path = Path(ckpt).expanduser()
    if not path.is_file():
        raise ConfigError(f"dlx viz: ckpt={ckpt}: no such checkpoint (use last, best or a path)")
    return path


def _leaf(target: Any) -> str:
    return str(target).rsplit(".", 1)[-1]


def _is_torch(model: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)
