"""A multirun at a glance: the monitored metric against each swept parameter.

`plot_sweep(sweep_dir, rows)` takes one row per job - `overrides` (a dict, or Hydra's list
of "key=value" strings), `value` (the monitored metric's final value; None when the job
failed), `status` ("done", "failed", ...) and optionally `monitor` (the metric's name) - so
a multirun callback can call it with the rows it collected. `sweep_rows(sweep_dir)` builds
the rows from the job folders a multirun leaves (`dlx viz run_dir=<sweep dir>`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from dlx.core.errors import ConfigError

OK = ("done", "ok", "completed", "finished", "success")
MONITOR_KEYS = ("val/acc", "test/acc", "val/loss", "test/loss")


def _overrides(row: dict[str, Any]) -> dict[str, str]:
    raw = row.get("overrides") or {}
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    out = {}
    for item in raw:
        key, _, value = str(item).partition("=")
        out[key.lstrip("+~")] = value
    return out


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _value(row: dict[str, Any]) -> float | None:
    value = row.get("value")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def plot_sweep(
    sweep_dir: Path, rows: list[dict[str, Any]], metric: str | None = None, dpi: int = 100
) -> Path:
    """Draw `<sweep_dir>/plots/sweep.png`: one panel per swept parameter (an override
    whose value differs between jobs), the metric of each job against its value; failed
    jobs as red crosses at the bottom of the panel. Returns the PNG's path."""
    from dlx.viz.style import new_figure, save_png

    if not rows:
        raise ConfigError(f"{sweep_dir}: no jobs to plot")
    parsed = [(_overrides(r), _value(r), str(r.get("status", "done")).lower()) for r in rows]
    metric = metric or next((str(r["monitor"]) for r in rows if r.get("monitor")), "metric")
    keys: list[str] = []
    for ov, _, _ in parsed:
        keys += [k for k in ov if k not in keys]
    swept = [k for k in keys if len({ov.get(k) for ov, _, _ in parsed}) > 1] or keys[:1]
    if not swept:
        raise ConfigError(f"{sweep_dir}: the jobs have no overrides to plot against")
    done = [v for _, v, s in parsed if v is not None and s in OK]
    floor = min(done) if done else 0.0
    fig = new_figure(5 * len(swept), 4, dpi)
    for i, key in enumerate(swept):
        ax = fig.add_subplot(1, len(swept), i + 1)
        values = [ov.get(key, "") for ov, _, _ in parsed]
        numeric = all(_number(v) is not None for v in values)
        order = sorted(set(values), key=lambda v: _number(v) if numeric else v)
        where = {v: (_number(v) if numeric else j) for j, v in enumerate(order)}
        good = [
            (where[x], y)
            for x, (_, y, s) in zip(values, parsed, strict=True)
            if y is not None and s in OK
        ]
        bad = [
            where[x]
            for x, (_, y, s) in zip(values, parsed, strict=True)
            if y is None or s not in OK
        ]
        if good:
            good.sort()
            xs, ys = zip(*good, strict=True)
            ax.plot(xs, ys, "o", color="tab:blue", label="job")
            best: dict[float, float] = {}
            for x, y in good:
                best.setdefault(x, y)
                best[x] = max(best[x], y) if "loss" not in metric else min(best[x], y)
            ax.plot(list(best), list(best.values()), "-", color="tab:blue", alpha=0.5)
        if bad:
            ax.plot(bad, [floor] * len(bad), "x", color="red", markersize=10, label="failed")
        label = key
        if numeric and log_spaced([where[v] for v in order]):
            ax.set_xscale("log")  # learning rates, weight decays: 1e-4 and 1e-3 apart
            label = f"{key} (log scale)"
        elif not numeric:
            ax.set_xticks(range(len(order)))
            ax.set_xticklabels(order, rotation=30, ha="right")
        ax.set_xlabel(label)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{metric} per swept parameter ({len(rows)} jobs, {len(bad_jobs(parsed))} failed)")
    fig.tight_layout()
    return save_png(fig, Path(sweep_dir) / "plots" / "sweep.png", dpi)


def log_spaced(values: list[float]) -> bool:
    """Positive values spanning a decade or more (0.001 .. 0.01): on a linear axis all but
    the largest would crowd at its left edge."""
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 10


def bad_jobs(parsed: list[tuple[dict[str, str], float | None, str]]) -> list[int]:
    return [i for i, (_, v, s) in enumerate(parsed) if v is None or s not in OK]


def is_sweep_dir(path: Path) -> bool:
    return (path / "multirun.yaml").is_file() or (
        not (path / ".hydra").is_dir() and bool(_job_dirs(path))
    )


def _job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(
        (p.parent.parent for p in Path(sweep_dir).glob("*/.hydra/overrides.yaml")),
        key=lambda p: (len(p.name), p.name),
    )


def sweep_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job folder of a multirun: its overrides, monitored metric and status
    (from job_status.json when the sweep wrote one, else from metrics.json)."""
    from omegaconf import OmegaConf

    rows = []
    for job in _job_dirs(sweep_dir):
        status_file = job / "job_status.json"
        if status_file.is_file():
            status = json.loads(status_file.read_text())
            rows.append(
                {
                    "overrides": status.get("overrides", []),
                    "value": status.get("value"),
                    "status": status.get("status", "done"),
                    "monitor": status.get("monitor"),
                }
            )
            continue
        overrides = list(OmegaConf.load(job / ".hydra" / "overrides.yaml"))
        metrics_file = job / "metrics.json"
        if not metrics_file.is_file():
            rows.append({"overrides": overrides, "value": None, "status": "failed"})
            continue
        metrics = json.loads(metrics_file.read_text())
        keys = [metrics.get("monitor"), *MONITOR_KEYS]
        key = next((k for k in keys if isinstance(metrics.get(k), (int, float))), None)
        rows.append(
            {
                "overrides": overrides,
                "value": None if key is None else metrics[key],
                "status": "done",
                "monitor": key,
            }
        )
    return rows
