"""`logger=wandb`: a Weights & Biases run per dlx run (per stage for staged runs).

Online when W&B has an API key (`$WANDB_API_KEY`, or `wandb login`'s entry in ~/.netrc),
else offline: the run is written under `<run dir>/wandb/offline-run-*` and uploaded later
with `wandb sync <that dir>`; `$WANDB_MODE` or `logger.wandb.mode` decide instead when set.
Logged: the resolved config as the run's config; `train/loss_step` (the mean loss of each
`trainer.log_every_n_steps` window) and every number of each epoch's row at the optimizer
step, the epoch's numbers charted against `epoch`; the final metrics as the run's summary;
the figures (`plots/*.png`) as images.

A resumed dlx run (trainer.resume) continues the same W&B run (its id is kept in
`<run dir>/wandb_run.json`); a fresh one starts a new run even in the same run dir. W&B
refuses a step lower than one it has, so it cannot drop what a killed run logged after its
checkpoint the way TensorBoard purges: instead the numbers are held back and sent when a
checkpoint is written (and at the end), so W&B only ever holds steps a checkpoint covers, and
the resumed run carries on from there. Without checkpoints (trainer.checkpoint=false) there
is nothing to resume from, and each number goes out as it comes. (Offline, W&B's own service
writes the run's file in blocks: a SIGKILL can cost that sitting's last block there, which
metrics.csv and steps.csv still hold.)
"""

from __future__ import annotations

import logging
import os
import secrets
import string
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dlx.core.io import write_json
from dlx.loggers import Logger, scalars

log = logging.getLogger("dlx")

RUN_FILE = "wandb_run.json"
_ID_CHARS = string.ascii_lowercase + string.digits


def has_api_key() -> bool:
    """Whether W&B would find an API key: `$WANDB_API_KEY`, or a ~/.netrc entry (where
    `wandb login` puts it) for the W&B host. Read here, without importing wandb."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    import netrc

    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        return bool(host) and netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(mode: str | None) -> str:
    """online | offline | disabled: the option, else $WANDB_MODE, else by the API key."""
    if mode:
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if has_api_key() else "offline"


class WandbLogger(Logger):
    requires = ("wandb", "wandb")

    def __init__(
        self,
        run_dir: Path,
        config: dict[str, Any] | None = None,
        project: str = "dlx",
        entity: str | None = None,
        name: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        mode: str | None = None,
        log_figures: bool = True,
        console: str = "off",
    ) -> None:
        self.run_dir = Path(run_dir)
        self.config = config or {}
        self.project = project
        self.entity = entity
        self.name = name or f"{self.run_dir.parent.name}/{self.run_dir.name}"
        self.group = group
        self.tags = list(tags or [])
        self.mode = resolve_mode(mode)
        self.log_figures = log_figures
        self.console = console
        # Held back until a checkpoint covers them (see the module's doc).
        self.hold = bool((self.config.get("trainer") or {}).get("checkpoint", False))
        self.pending: list[tuple[int, dict[str, Any]]] = []
        self.run: Any = None
        self.step = 0
        self.defined: set[str] = set()

    def start(self, step: int, epoch: int) -> None:
        self._open(resuming=step > 0)
        self.step = step

    def _open(self, resuming: bool = False) -> Any:
        if self.run is not None:
            return self.run
        import wandb

        run_id = self._saved_id() if resuming else None
        if run_id is None:
            run_id = "".join(secrets.choice(_ID_CHARS) for _ in range(8))
        self.run = wandb.init(
            project=self.project,
            entity=self.entity,
            name=self.name,
            group=self.group,
            tags=self.tags or None,
            config=self.config,
            dir=str(self.run_dir),
            id=run_id,
            resume="allow" if resuming else None,
            mode=self.mode,
            settings=wandb.Settings(console=self.console, silent=True, disable_git=True),
        )
        write_json(
            {"id": run_id, "project": self.project, "entity": self.entity, "mode": self.mode},
            self.run_dir / RUN_FILE,
        )
        where = Path(self.run.dir).parent if self.run.dir else self.run_dir / "wandb"
        if self.mode == "offline":
            log.info("wandb: offline; upload later with: wandb sync %s", where)
        elif self.mode != "disabled":
            log.info("wandb: %s", getattr(self.run, "url", None) or where)
        return self.run

    def _saved_id(self) -> str | None:
        import json

        path = self.run_dir / RUN_FILE
        if not path.is_file():
            return None
        try:
            saved = json.loads(path.read_text())
        except ValueError:
            return None
        if (saved.get("project"), saved.get("entity")) != (self.project, self.entity):
            return None  # another project now: a new run there
        run_id = saved.get("id")
        return run_id if isinstance(run_id, str) and run_id else None

    def _log(self, values: dict[str, Any], step: int) -> None:
        self.pending.append((step, values))
        if not self.hold:
            self.flush()

    def log_losses(self, step: int, epoch: int, values: list[float]) -> None:
        import math

        self._log({"train/loss_step": math.fsum(values) / len(values)}, step)
        self.step = step

    def log_epoch(self, row: dict[str, float], step: int) -> None:
        values = scalars(row)
        if "epoch" in values:
            values["epoch"] = int(values["epoch"])
        self._log(values, step)
        self.step = step

    def flush(self) -> None:
        if not self.pending:
            return
        run = self._open()
        for step, values in self.pending:
            self._define(run, values)
            run.log(values, step=step)
        self.pending = []

    def _define(self, run: Any, values: dict[str, Any]) -> None:
        # An epoch's numbers are charted against the epoch, the step losses against the step.
        if "epoch" not in values:
            return
        if "epoch" not in self.defined:
            run.define_metric("epoch")
            self.defined.add("epoch")
        for key in values:
            if key not in self.defined:
                run.define_metric(key, step_metric="epoch")
                self.defined.add(key)

    def log_final(
        self, metrics: dict[str, Any], plots: list[Path], model: Any = None, example: Any = None
    ) -> None:
        self.flush()
        run = self._open()
        # The numbers and names of metrics.json as they are (num_params stays an int).
        run.summary.update({k: v for k, v in metrics.items() if isinstance(v, (int, float, str))})
        if self.log_figures and plots:
            import wandb

            images = {f"plots/{Path(p).stem}": wandb.Image(str(p)) for p in plots}
            run.log(images, step=self.step)

    def close(self, status: str = "FINISHED") -> None:
        if self.run is None:
            return  # a run that failed before it started logs nothing
        try:
            # A failed run's last numbers show what went wrong: they go too.
            self.flush()
        finally:
            self.run.finish(exit_code=0 if status == "FINISHED" else 1)
            self.run = None
