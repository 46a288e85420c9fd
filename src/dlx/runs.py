"""`dlx runs`: every run and sweep job under a folder in one table, best first; with
`compare=[<dir>,<dir>,...]`, their learning curves on one figure and the config keys on
which they differ.

Reads only what runs write (dlx/runlist.py), so runs made before this command list too.
Writes no run dir; compare= writes its figure to `out=` (compare.png).
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dlx.core.errors import ConfigError
from dlx.runlist import (
    EXTRA,
    Run,
    Warnings,
    find_runs,
    matches,
    parse_where,
    read_history,
    read_run,
    sort_order,
    sort_runs,
)

# Shown in the table besides the sort key, when some run has them.
HEADLINE = ("test/acc", "val/acc", "train/acc", "test/loss", "val/loss")
SHOWN_METRICS = 3


def runs(cfg: DictConfig) -> list[Run]:
    root = Path(cfg.root).expanduser()
    warn = Warnings()
    if cfg.compare is not None:
        return compare(cfg, root, warn)
    if not root.is_dir():
        raise ConfigError(f"dlx runs: root={root} is not a folder; give root=<outputs folder>")
    conditions = parse_where(cfg.where)
    found = [read_run(d, warn) for d in find_runs(root)]
    chosen = sort_runs([r for r in found if matches(r, conditions)], cfg.sort)
    if cfg.limit is not None:
        chosen = chosen[: cfg.limit]
    if cfg.format == "csv":
        sys.stdout.write(as_csv(chosen))
    elif cfg.format == "json":
        sys.stdout.write(json.dumps([as_dict(r) for r in chosen], indent=2) + "\n")
    elif not chosen:
        what = "run matches where=" + str(cfg.where) if found else "runs"
        print(f"no {what} under {root}")
    else:
        _print_table(chosen, root, cfg.sort, len(found))
    return chosen


# --- the table, CSV and JSON -----------------------------------------------------------------


def _when(run: Run) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.when))


def as_dict(run: Run) -> dict[str, Any]:
    return {
        "when": _when(run),
        "command": run.command,
        "status": run.status,
        "experiment": run.experiment,
        "overrides": run.overrides,
        "metrics": run.metrics,
        "wall_time_s": run.wall_time_s,
        "job": run.job,
        "run_dir": str(run.run_dir),
        "error": run.error,
    }


def as_csv(chosen: list[Run]) -> str:
    metrics = sorted({k for r in chosen for k in r.metrics})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    head = ["rank", "when", "command", "status", "experiment", "overrides", *metrics]
    writer.writerow([*head, "wall_time_s", "job", "run_dir", "error"])
    for i, r in enumerate(chosen, 1):
        writer.writerow(
            [i, _when(r), r.command, r.status, r.experiment or "", " ".join(r.overrides)]
            + [r.metrics.get(k, "") for k in metrics]
            + ["" if r.wall_time_s is None else r.wall_time_s, "" if r.job is None else r.job]
            + [str(r.run_dir), r.error or ""]
        )
    return buf.getvalue()


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}"
    return str(value)


def _wall(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, s = divmod(int(seconds), 60)
    return f"{minutes}m{s:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _print_table(chosen: list[Run], root: Path, sort: str, total: int) -> None:
    from rich.console import Console
    from rich.table import Table

    key, descending = sort_order(sort)
    is_metric = any(key in r.metrics for r in chosen)
    metrics = [key] if is_metric else []
    metrics += [k for k in HEADLINE if k != key and any(k in r.metrics for r in chosen)]
    metrics = metrics[: SHOWN_METRICS + is_metric]
    if not any(r.status == "done" for r in chosen) and any("epochs" in r.metrics for r in chosen):
        metrics.append("epochs")
    order = "higher first" if descending else "lower first"
    title = f"{len(chosen)} of {total} runs under {root}, sorted by {key} ({order})"
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("when")
    commands = {r.command for r in chosen}
    if len(commands) > 1:
        table.add_column("command")
    table.add_column("status")
    for k in metrics:
        table.add_column(k, justify="right")
    table.add_column("wall", justify="right")
    table.add_column("overrides", overflow="fold")
    table.add_column("run dir", overflow="fold")
    for i, r in enumerate(chosen, 1):
        shown = r.run_dir.relative_to(root) if r.run_dir.is_relative_to(root) else r.run_dir
        cells = [str(i), _when(r), *([r.command] if len(commands) > 1 else []), r.status]
        cells += [_fmt(r.metrics.get(k)) for k in metrics]
        cells += [_wall(r.wall_time_s), " ".join(r.overrides), str(shown)]
        table.add_row(*cells, style=None if r.status in ("done", "running") else "red")
    console = Console()
    if not console.is_terminal:  # a pipe or a file: no wrapping at 80 columns
        console = Console(width=200)
    console.print(table)


# --- compare= --------------------------------------------------------------------------------


def _run_dirs(names: list[str], root: Path) -> list[Path]:
    """The run dirs compare= names: as given, else under root; a folder of runs (a sweep
    dir) stands for all its runs."""
    dirs: list[Path] = []
    for name in names:
        path = Path(str(name)).expanduser()
        if not path.exists() and (root / path).exists():
            path = root / path
        path = path.absolute()
        if not path.is_dir():
            raise ConfigError(f"dlx runs compare: {name} is not a folder (a run dir)")
        found = find_runs(path)
        if not found:
            raise ConfigError(f"dlx runs compare: {path} holds no run (no .hydra/ or metrics)")
        dirs += [d for d in found if d not in dirs]
    return dirs


def labels(dirs: list[Path]) -> list[str]:
    """The shortest path endings that tell the runs apart (`0`, `1` for sweep jobs)."""
    for n in range(1, max(len(d.parts) for d in dirs) + 1):
        names = ["/".join(d.parts[-n:]) for d in dirs]
        if len(set(names)) == len(names):
            return names
    return [str(d) for d in dirs]


def stored_config(run: Run) -> dict[str, Any] | None:
    """The run's config: `.hydra/config.yaml`, else the one its checkpoint stores (loaded
    with weights_only=True and verified, by dlx.engine.checkpoint)."""
    if run.config is not None:
        return run.config
    for name in ("last.pt", "best.pt"):
        path = run.run_dir / "checkpoints" / name
        if path.is_file():
            from dlx.engine.checkpoint import CheckpointError, load_checkpoint

            try:
                stored = load_checkpoint(path, mmap=True).get("config")
            except CheckpointError as err:
                run.warn(path, str(err))
                continue
            return stored if isinstance(stored, dict) else None
    return None


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out if out or not prefix else {prefix: {}}
    return {prefix: node}


def differing(configs: list[dict[str, Any] | None]) -> dict[str, list[Any]]:
    """{key: [value in each run]} for the config keys whose values differ between the runs
    whose config is known (— where a key is absent, ? where the whole config is)."""
    flat = [flatten(c) if c is not None else None for c in configs]
    keys: list[str] = []
    for f in flat:
        keys += [k for k in f or {} if k not in keys]
    out = {}
    for key in keys:
        values = ["?" if f is None else f.get(key, "—") for f in flat]
        known = [v for v, f in zip(values, flat, strict=True) if f is not None]
        if len({json.dumps(v, sort_keys=True, default=str) for v in known}) > 1:
            out[key] = values
    return out


def compare(cfg: DictConfig, root: Path, warn: Warnings) -> list[Run]:
    from rich.console import Console
    from rich.table import Table

    from dlx.viz.compare import plot_compare

    chosen = [read_run(d, warn) for d in _run_dirs(list(cfg.compare), root)]
    names = labels([r.run_dir for r in chosen])
    configs = [stored_config(r) for r in chosen]
    for run, config in zip(chosen, configs, strict=True):
        if config is None:
            why = "no config (.hydra/config.yaml or a checkpoint's): its keys show as ?"
            warn(run.run_dir, why, skipped=False)
    diffs = differing(configs)
    console = Console() if Console().is_terminal else Console(width=200)
    table = Table(title=f"{len(chosen)} runs: config keys that differ", title_justify="left")
    table.add_column("key")
    for name in names:
        table.add_column(name, overflow="fold")
    for i, (key, values) in enumerate(diffs.items(), 1):
        table.add_row(key, *(_cell(v) for v in values), end_section=i == len(diffs))
    metrics = [k for k in (*HEADLINE, *EXTRA) if any(k in r.metrics for r in chosen)]
    for key in metrics:
        table.add_row(key, *(_fmt(r.metrics.get(key)) for r in chosen))
    table.add_row("status", *(r.status for r in chosen))
    console.print(table)
    if not diffs and all(c is not None for c in configs):
        print("the configs are the same")
    drawn = []
    for name, run in zip(names, chosen, strict=True):
        print(f"  {name}: {run.run_dir}")
        rows = read_history(run.run_dir / "metrics.csv", warn)
        if rows:
            drawn.append((name, rows))
    if not drawn:
        print("no learning curves to draw (no metrics.csv with epochs)")
        return chosen
    path = plot_compare(drawn, Path(cfg.out).expanduser())
    print(f"compare: {path}")
    return chosen


def _cell(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return _fmt(value) if isinstance(value, float) else "null" if value is None else str(value)


def main(argv: list[str]) -> None:
    from dlx.command import run_command

    run_command("runs", runs, argv)
