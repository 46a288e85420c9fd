"""Where a run is: one dataclass, saved whole in every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class RunState:
    epoch: int = 0  # completed epochs
    batch: int = 0  # batches done in the current epoch
    step: int = 0  # optimizer steps so far
    seen: int = 0  # samples seen in the current epoch (this process's)
    # Running loss and metric sums of the current epoch, on the device (read once an epoch).
    sums: torch.Tensor | None = None
    rows: list[dict[str, float]] = field(default_factory=list)  # one per finished epoch
    should_stop: bool = False  # a part (early stopping) ended training before max_epochs

    def state_dict(self) -> dict[str, Any]:
        mid_epoch = self.batch > 0 and self.sums is not None
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "seen": self.seen,
            "sums": self.sums.detach().cpu() if mid_epoch else None,
            "rows": [dict(r) for r in self.rows],
            "should_stop": self.should_stop,
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.epoch, self.batch, self.step = state["epoch"], state["batch"], state["step"]
        self.seen = state["seen"]
        self.sums = None if state["sums"] is None else state["sums"].to(device)
        self.rows = [dict(r) for r in state["rows"]]
        self.should_stop = state["should_stop"]
