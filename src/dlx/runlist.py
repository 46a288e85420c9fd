"""Every run under a folder, read from the files runs already write, for `dlx runs`.

A run dir is a folder holding `.hydra/config.yaml` (Hydra's record of a run or a sweep job),
`job_status.json` (a sweep job) or `metrics.json`; its subfolders (stages, checkpoints,
plots) are part of it. What is read: `.hydra/config.yaml`, `.hydra/overrides.yaml`,
`.hydra/hydra.yaml` (the group choices), `metrics.json`, `metrics.csv` and `job_status.json`:
runs made before `dlx runs` existed list as well. Files are data: YAML through OmegaConf's
safe loader, JSON and CSV as text; a damaged or foreign file is skipped with one warning.
Torch-free.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import math
import os
import re
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlx.core.errors import ConfigError

STATUS_FILE = "job_status.json"
# Subfolders of a folder that is not a run, which hold no runs either (loggers' stores keep
# copies of a run's metrics.json as artifacts: outputs/mlruns/...).
_NOT_RUNS = {"checkpoints", "plots", ".hydra", ".submitit", "__pycache__", ".git", "mlruns",
             "wandb", "tensorboard", "artifacts"}  # fmt: skip
# metrics.json values that are not metrics but are shown (epochs, timing).
EXTRA = ("epochs", "best_epoch", "num_params", "wall_time_s")
_MISSING = object()


class Warnings:
    """One `warning: skipped <file>: <why>` line on stderr per unusable file."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, path: Path, why: str, skipped: bool = True) -> None:
        if str(path) in self.seen:
            return
        self.seen.add(str(path))
        sys.stderr.write(f"warning: {'skipped ' * skipped}{path}: {why}\n")


def read_json(path: Path, warn: Warnings) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        warn(path, f"not a JSON file ({type(err).__name__})")
        return None
    if not isinstance(data, dict):
        warn(path, "not a JSON object")
        return None
    return data


def read_yaml(path: Path, warn: Warnings) -> Any:
    """A YAML file through OmegaConf's loader (a safe loader: a `!!python/...` tag is an
    error, not code), as plain containers with interpolations left as text."""
    if not path.is_file():
        return None
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as err:  # yaml's and OmegaConf's errors: a damaged or foreign file
        warn(path, f"not a readable config ({type(err).__name__})")
        return None


def read_history(path: Path, warn: Warnings) -> list[dict[str, float]]:
    """metrics.csv: one row an epoch, numbers only (an empty cell is left out)."""
    if not path.is_file():
        return []
    rows = []
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                rows.append({k: float(v) for k, v in row.items() if k and v not in (None, "")})
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as err:
        warn(path, f"not a metrics table ({type(err).__name__})")
        return []
    return rows if all("epoch" in r for r in rows) else []


def find_runs(root: Path) -> list[Path]:
    """Every run dir under root (root itself included), sorted by path."""
    found = []
    for folder, subdirs, files in os.walk(root):
        here = Path(folder)
        record = (here / ".hydra" / "config.yaml").is_file()
        if record or STATUS_FILE in files or "metrics.json" in files:
            found.append(here)
            subdirs[:] = []  # a staged run's stages, its checkpoints: part of this run
        else:
            subdirs[:] = sorted(d for d in subdirs if d not in _NOT_RUNS)
    return sorted(found)


@dataclass
class Run:
    """What `dlx runs` shows of one run dir."""

    run_dir: Path
    command: str = "train"
    when: float = 0.0
    status: str = "unfinished"  # done | failed | running | unfinished
    overrides: list[str] = field(default_factory=list)
    experiment: str | None = None
    metrics: dict[str, int | float] = field(default_factory=dict)
    wall_time_s: float | None = None
    job: int | None = None
    error: str | None = None
    choices: dict[str, Any] = field(default_factory=dict)
    warn: Warnings = field(default_factory=Warnings, repr=False)
    _config: Any = field(default=_MISSING, repr=False)

    @property
    def config(self) -> dict[str, Any] | None:
        """The run's composed config (`.hydra/config.yaml`), read when first asked for."""
        if self._config is _MISSING:
            data = read_yaml(self.run_dir / ".hydra" / "config.yaml", self.warn)
            self._config = data if isinstance(data, dict) else None
        return self._config

    def value(self, key: str) -> Any:
        """A field, metric, override, group choice or config key (in that order); _MISSING."""
        if key in ("status", "command", "experiment", "job", "error", "when"):
            return getattr(self, key)
        if key in ("run_dir", "dir"):
            return str(self.run_dir)
        if key in ("wall", "wall_time_s"):
            return self.wall_time_s
        if key in self.metrics:
            return self.metrics[key]
        for text in self.overrides:
            name, _, value = text.lstrip("+~").partition("=")
            if name == key:
                return value
        if key in self.choices:
            return self.choices[key]
        node: Any = self.config
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return _MISSING
            node = node[part]
        return node


def read_run(run_dir: Path, warn: Warnings) -> Run:
    run = Run(run_dir, warn=warn)
    hydra_dir = run_dir / ".hydra"
    overrides = read_yaml(hydra_dir / "overrides.yaml", warn)
    hydra = read_yaml(hydra_dir / "hydra.yaml", warn)
    status = read_json(run_dir / STATUS_FILE, warn)
    metrics = read_json(run_dir / "metrics.json", warn)
    if isinstance(hydra, dict) and isinstance(hydra.get("hydra"), dict):
        run.command = str((hydra["hydra"].get("job") or {}).get("name") or run.command)
        choices = (hydra["hydra"].get("runtime") or {}).get("choices") or {}
        run.choices = {k: v for k, v in choices.items() if not str(k).startswith("hydra/")}
    if isinstance(overrides, list):
        run.overrides = [str(o) for o in overrides]
    elif status is not None and isinstance(status.get("overrides"), list):
        run.overrides = [str(o) for o in status["overrides"]]
    run.overrides = [o for o in run.overrides if not o.startswith("sweep.resume=")]
    run.experiment = next(
        (o.split("=", 1)[1] for o in run.overrides if o.lstrip("+").startswith("experiment=")),
        run.choices.get("experiment"),
    )
    metrics = metrics or {}
    run.metrics = {k: v for k, v in metrics.items() if ("/" in k or k in EXTRA) and _number(v)}
    run.wall_time_s = run.metrics.pop("wall_time_s", None)
    run.status = "done" if any("/" in k for k in run.metrics) else "unfinished"
    if status is not None:
        run.job = status.get("job") if isinstance(status.get("job"), int) else None
        run.error = str(status["error"]) if status.get("error") else None
        state = status.get("status")
        run.status = state if state in ("done", "failed") else "unfinished"
        if state == "running" and _alive(status.get("pid"), status.get("host")):
            run.status = "running"
        ended, started = status.get("ended"), status.get("started")
        if run.wall_time_s is None and _number(ended) and _number(started):
            run.wall_time_s = float(ended) - float(started)
    if run.status != "done" and "epochs" not in run.metrics:
        history = read_history(run_dir / "metrics.csv", warn)
        if history:
            run.metrics["epochs"] = int(history[-1]["epoch"])
    # When it started: Hydra's record (kept by a resume), else the job's own, else the dir's.
    record = hydra_dir / "config.yaml"
    started = (status or {}).get("started")
    run.when = run_dir.stat().st_mtime if not _number(started) else float(started)
    run.when = record.stat().st_mtime if record.is_file() else run.when
    return run


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _alive(pid: Any, host: Any) -> bool:
    """Whether the job's process still runs (only knowable on the host it ran on)."""
    if not isinstance(pid, int) or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # alive, another user's
    return True


# --- where= and sort= ------------------------------------------------------------------------

_CONDITION = re.compile(r"^\s*([^<>=!:]+?)\s*(>=|<=|!=|==|=|:|>|<)\s*(.*?)\s*$")


def parse_where(where: Any) -> list[tuple[str, str, str]]:
    """`where=` as (key, operator, value) conditions, all of which a run must meet."""
    items = [] if where is None else [where] if isinstance(where, str) else list(where)
    out = []
    for item in items:
        match = _CONDITION.match(str(item))
        if not match:
            raise ConfigError(
                f"where={item!r} is not a condition; write key:value (a glob), or quoted "
                "comparisons such as \"where='test/acc>=0.9'\""
            )
        out.append((match[1], match[2], match[3]))
    return out


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) or value is None else str(value)


def matches(run: Run, conditions: list[tuple[str, str, str]]) -> bool:
    for key, op, want in conditions:
        have = run.value(key)
        if have is _MISSING:
            if op != "!=":
                return False
            continue
        a, b = _as_float(have), _as_float(want)
        if op in (">", "<", ">=", "<="):
            if a is None or b is None:
                return False
            ok = {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]
        else:
            equal = (
                a == b
                if a is not None and b is not None
                else fnmatch.fnmatchcase(_text(have), want)
            )
            ok = equal if op != "!=" else not equal
        if not ok:
            return False
    return True


def sort_order(sort: str) -> tuple[str, bool]:
    """(key, descending) of `sort=`: metrics best first (losses and times ascending), runs
    newest first; `key:asc` or `key:desc` to say it."""
    key, _, direction = sort.rpartition(":") if sort.endswith((":asc", ":desc")) else (sort, "", "")
    if direction:
        return key, direction == "desc"
    low_first = "loss" in key or "error" in key or key.endswith("_s") or key in ("wall", "epochs")
    return key, not low_first


def sort_runs(runs: list[Run], sort: str) -> list[Run]:
    """Best first by `sort`; runs without a value for it last, newest first among them."""
    key, descending = sort_order(sort)

    def rank(run: Run) -> tuple[int, Any]:
        value = run.value(key)
        number = _as_float(value) if value is not _MISSING else None
        if number is not None and not math.isnan(number):
            return 0, -number if descending else number
        return 1, -run.when

    return sorted(runs, key=rank)
