"""Schemas of the settings that manage runs rather than train them: `sweep.resume` (a key of
every command's config, read by `dlx train -m`) and `dlx runs`, the table of every run.

Registered with the others by dlx.core.schemas (`schema/sweep`, `schema/runs`). Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlx.core.errors import ConfigError
from dlx.core.fields import setting

FORMATS = ("table", "csv", "json")


@dataclass
class SweepConfig:
    resume: bool = setting(
        False,
        "with -m and hydra.sweep.dir=<an earlier sweep's dir>: skip its finished jobs, "
        "resume its unfinished ones from last.pt, run the rest",
    )


@dataclass
class RunsConfig:
    """`dlx runs`: the root of its config (it composes no data set or model)."""

    root: str = setting("outputs", "the folder whose runs and sweep jobs are listed")
    sort: str = setting(
        "test/acc", "a metric (best first: losses ascending), when, or <key>:asc|desc"
    )
    where: Any = setting(
        None, "keep runs that match: key:value (glob), or 'key>0.9' (quoted), or a list"
    )
    format: str = setting("table", "table | csv | json")
    compare: list[str] | None = setting(
        None, "[run dir, run dir, ...]: learning curves on one figure, and the keys that differ"
    )
    out: str = setting("compare.png", "where compare= writes its figure")
    limit: int | None = setting(None, "list at most this many (the best ones)")

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"format={self.format!r} is not one of {', '.join(FORMATS)}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit={self.limit} must be a positive integer")
        if self.compare is not None and len(self.compare) < 1:
            raise ConfigError("compare= needs at least one run dir: compare=[<dir>,<dir>]")
