"""`logger=mlflow`: an MLflow run per dlx run (per stage for staged runs).

Where: `logger.mlflow.tracking_uri`, else `$MLFLOW_TRACKING_URI`, else a local file store
in `<paths.output_dir>/mlruns` (MLflow 3 keeps that backend in maintenance mode and asks for
MLFLOW_ALLOW_FILE_STORE=true, which dlx sets for its own default store only; point
MLFLOW_TRACKING_URI at a database or server to use those). Logged: the flattened config as
params, each epoch's numbers at step = epoch, the final metrics, and as artifacts the
figures (`plots/`) and `metrics.json`. The run id is kept in `<run dir>/mlflow_run.json`,
so a resumed dlx run (trainer.resume) continues the same MLflow run; a fresh one starts a
new MLflow run even in the same run dir. Uses MlflowClient, not mlflow's global
"active run", so nothing leaks between stages or into user code.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from dlx.core.io import write_json
from dlx.loggers import Logger, flatten, scalars

RUN_FILE = "mlflow_run.json"
_BATCH = 100  # MLflow's limit of params per log_batch call
_MAX_PARAM = 6000  # and of a param value's length


class MLflowLogger(Logger):
    requires = ("mlflow", "mlflow")

    def __init__(
        self,
        run_dir: Path,
        config: dict[str, Any] | None = None,
        tracking_uri: str | None = None,
        store_dir: str = "outputs/mlruns",
        experiment_name: str = "dlx",
        run_name: str | None = None,
    ) -> None:
        from mlflow.tracking import MlflowClient

        self.run_dir = Path(run_dir)
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            uri = Path(store_dir).expanduser().resolve().as_uri()
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.tracking_uri = uri
        self.client = MlflowClient(uri)
        self.config = config or {}
        self.experiment_name = experiment_name
        self.run_name = run_name or f"{self.run_dir.parent.name}/{self.run_dir.name}"
        self.run_id: str | None = None
        self.epoch = 0
        self.logged: set[str] = set()

    def start(self, step: int, epoch: int) -> None:
        self._open(resuming=step > 0)

    def _open(self, resuming: bool = False) -> str:
        """The MLflow run: the saved one when training resumes, else a new one."""
        if self.run_id is None and resuming:
            self.run_id = self._resumed_run()
        if self.run_id is None:
            experiment_id = self._experiment(self.experiment_name)
            run = self.client.create_run(
                experiment_id,
                run_name=self.run_name,
                tags={"dlx.run_dir": str(self.run_dir.resolve())},
            )
            self.run_id = run.info.run_id
            write_json(
                {"tracking_uri": self.tracking_uri, "experiment_id": experiment_id,
                 "run_id": self.run_id},
                self.run_dir / RUN_FILE,
            )  # fmt: skip
            self._log_params(flatten(self.config))
        return self.run_id

    def _resumed_run(self) -> str | None:
        import json

        path = self.run_dir / RUN_FILE
        if not path.is_file():
            return None
        saved = json.loads(path.read_text())
        if saved.get("tracking_uri") != self.tracking_uri:
            return None
        try:
            self.client.get_run(saved["run_id"])
        except Exception:  # deleted, or a store that no longer has it: start a new run
            return None
        return saved["run_id"]

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name)
        except Exception:  # created meanwhile by a parallel job of the same sweep
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def _log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:_MAX_PARAM]) for k, v in params.items()]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self._open(), params=items[i : i + _BATCH])

    def _log_metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, v, now, step) for k, v in values.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self._open(), metrics=items[i : i + 1000])

    def log_epoch(self, row: dict[str, float], step: int) -> None:
        self.epoch = int(row.get("epoch", self.epoch + 1))
        values = {k: v for k, v in scalars(row).items() if k != "epoch"}
        self._log_metrics(values, self.epoch)
        self.logged = set(values)

    def log_final(
        self, metrics: dict[str, Any], plots: list[Path], model: Any = None, example: Any = None
    ) -> None:
        # The last epoch's train/val values are logged already; add test/* and the rest.
        final = {k: v for k, v in scalars(metrics).items() if k not in self.logged}
        self._log_metrics(final, self.epoch)
        run_id = self._open()
        self.client.log_dict(run_id, metrics, "metrics.json")
        for path in plots:
            self.client.log_artifact(run_id, str(path), "plots")

    def close(self, status: str = "FINISHED") -> None:
        if self.run_id is not None:  # a run that failed before it started logs nothing
            self.client.set_terminated(self.run_id, status)
