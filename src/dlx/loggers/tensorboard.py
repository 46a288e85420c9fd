"""`logger=tensorboard`: event files in `<run dir>/tensorboard/` via torch.utils.tensorboard.

Scalars: `train/loss_step` (the mean loss of each `trainer.log_every_n_steps` window) and
every number of each epoch's row, all at the optimizer step (so the x axes agree and a
resumed run can purge what a killed one wrote after its checkpoint); at the end the test
metrics, the hyperparameters (the flattened config) with the final metrics for the HParams
tab, and the model graph (traced once on an example batch, after training).
`tensorboard --logdir outputs` shows every run.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from dlx.loggers import Logger, flatten, scalars

log = logging.getLogger("dlx")


class TensorBoardLogger(Logger):
    requires = ("tensorboard", "tensorboard")

    def __init__(
        self,
        run_dir: Path,
        config: dict[str, Any] | None = None,
        subdir: str = "tensorboard",
        log_graph: bool = True,
        hparams: bool = True,
        flush_secs: int = 30,
    ) -> None:
        self.log_dir = Path(run_dir) / subdir
        self.config = config or {}
        self.log_graph = log_graph
        self.hparams = hparams
        self.flush_secs = flush_secs
        self.writer: Any = None
        self.step = 0
        self.logged: set[str] = set()

    def _open(self, purge_step: int | None = None) -> Any:
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(
                str(self.log_dir), purge_step=purge_step, flush_secs=self.flush_secs
            )
        return self.writer

    def start(self, step: int, epoch: int) -> None:
        # Resuming: TensorBoard drops the events a killed run wrote after the checkpoint's
        # step; a fresh run in a run dir that has events replaces them all.
        if step > 0:
            purge = step + 1
        else:
            purge = 0 if any(self.log_dir.glob("events.out.tfevents.*")) else None
        self._open(purge_step=purge)
        self.step = step

    def log_losses(self, step: int, epoch: int, values: list[float]) -> None:
        self._open().add_scalar("train/loss_step", math.fsum(values) / len(values), step)
        self.step = step

    def log_epoch(self, row: dict[str, float], step: int) -> None:
        writer = self._open()
        for key, value in scalars(row).items():
            writer.add_scalar(key, value, step)
            self.logged.add(key)
        self.step = step

    def log_final(
        self, metrics: dict[str, Any], plots: list[Path], model: Any = None, example: Any = None
    ) -> None:
        writer = self._open()
        final = {k: v for k, v in scalars(metrics).items() if "/" in k}
        for key, value in final.items():
            if key not in self.logged:  # train/val were logged each epoch; test/* are new
                writer.add_scalar(key, value, self.step)
        if self.hparams and final:
            from torch.utils.tensorboard.summary import hparams

            # Written into this run's own event file (add_hparams would open a sub-run).
            exp, ssi, sei = hparams(flatten(self.config), final)
            file_writer = writer._get_file_writer()
            for summary in (exp, ssi, sei):
                file_writer.add_summary(summary)
        if self.log_graph and model is not None and example is not None:
            self._graph(writer, model, example)
        writer.flush()

    def _graph(self, writer: Any, model: Any, example: Any) -> None:
        import warnings

        was_training = model.training
        model.eval()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings about data-dependent code
                writer.add_graph(model, example)
        except Exception as err:  # tracing fails on some models; the graph is a nicety
            log.info("tensorboard: model graph skipped (%s)", str(err).splitlines()[0][:120])
        finally:
            model.train(was_training)

    def close(self, status: str = "FINISHED") -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
