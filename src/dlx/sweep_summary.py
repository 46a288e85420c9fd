"""Reading a sweep dir: one row a job (from the `job_status.json` files its jobs wrote),
best first, as `sweep_summary.csv`, a rich table and `sweep_summary.txt`.

Launchers may run jobs in other processes or on other machines (joblib, submitit), so the
summary is built from those files, not from memory. `sweep_rows()` gives the same rows to
other code (figures of metric vs parameter). Torch-free.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

STATUS_FILE = "job_status.json"
SUMMARY_CSV = "sweep_summary.csv"
SUMMARY_TXT = "sweep_summary.txt"

# Metrics that end up in the summary besides the monitored one: scalars only.
_EXTRA_METRICS = ("num_params", "epochs", "best_epoch", "wall_time_s")


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """`["optimizer.lr=0.01", "model.hidden=[32]"]` -> {"optimizer.lr": 0.01, "model.hidden":
    [32]}, typed by Hydra's own override parser (numbers become numbers, for plots)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    out: dict[str, Any] = {}
    for text in overrides:
        try:
            override = parser.parse_override(text)
            out[override.get_key_element()] = override.value()
        except Exception:  # an override Hydra ran but cannot re-parse alone: keep the text
            key, _, value = text.partition("=")
            out[key] = value
    return out


def _own_removed(overrides: Any) -> list[str]:
    """The overrides that say what a job computes (`sweep.resume=true` does not)."""
    return [str(o) for o in overrides or [] if not str(o).lstrip("+").startswith("sweep.resume=")]


def _load_json(path: Path) -> dict[str, Any] | None:
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def sweep_rows(
    sweep_dir: Path | str, sweep_id: str | None = None, planned: list[list[str]] | int | None = None
) -> list[dict[str, Any]]:
    """The jobs of a sweep, best first by the monitored metric, then failed, unfinished and
    not started.

    Each row: `rank` (1 = best; None when the job has no value), `job` (Hydra's job number),
    `status` (done | failed | unfinished: killed or still running | not started: planned,
    by `planned`, the jobs' overrides or their number), `error` (its one line),
    `overrides` (dict, typed), `run_dir`, `monitor` (metric name), `mode` (min | max),
    `value` (its final value) and `metrics` (the other final scalar metrics of metrics.json).
    With `sweep_id`, status files from another sweep in the same dir are left out.
    """
    sweep_dir = Path(sweep_dir)
    rows = []
    for path in sorted(sweep_dir.rglob(STATUS_FILE)):
        status = _load_json(path)
        if status is None or "job" not in status:
            continue
        if sweep_id and status.get("sweep_id") not in (None, sweep_id):
            continue
        run_dir = path.parent
        metrics = _load_json(run_dir / "metrics.json") or {}
        state = status.get("status")
        rows.append(
            {
                "rank": None,
                "job": int(status["job"]),
                "status": state if state in ("done", "failed") else "unfinished",
                "error": status.get("error"),
                "overrides": parse_overrides(_own_removed(status.get("overrides"))),
                "run_dir": str(run_dir),
                "monitor": status.get("monitor"),
                "mode": status.get("mode"),
                "value": status.get("value"),
                "metrics": {
                    k: v
                    for k, v in metrics.items()
                    if ("/" in k or k in _EXTRA_METRICS)
                    and isinstance(v, (int, float))
                    and not isinstance(v, bool)
                },
            }
        )
    jobs = planned if isinstance(planned, list) else [[]] * (planned or 0)
    seen = {r["job"] for r in rows}
    for num, overrides in enumerate(jobs):
        if num not in seen:
            rows.append(
                {"rank": None, "job": num, "status": "not started", "error": None,
                 "overrides": parse_overrides(_own_removed(overrides)), "run_dir": "",
                 "monitor": None, "mode": None, "value": None, "metrics": {}}
            )  # fmt: skip
    return _rank(rows)


def _rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Rank on the metric most jobs monitor (a sweep over val_split could mix val/ and train/).
    monitors = Counter(r["monitor"] for r in rows if r["status"] == "done" and r["monitor"])
    key = monitors.most_common(1)[0][0] if monitors else None
    mode = next((r["mode"] for r in rows if r["monitor"] == key), "max")

    def value(row: dict[str, Any]) -> float | None:
        v = row["value"] if row["monitor"] == key else row["metrics"].get(key)
        return None if v is None or math.isnan(v) else float(v)

    ranked = sorted(
        (r for r in rows if r["status"] == "done" and value(r) is not None),
        key=lambda r: (-value(r) if mode == "max" else value(r), r["job"]),  # type: ignore[operator]
    )
    for i, row in enumerate(ranked, 1):
        row.update(rank=i, monitor=key, mode=mode, value=value(row))
    order = {"done": 0, "failed": 1, "unfinished": 2, "not started": 3}
    rest = sorted(
        (r for r in rows if r["rank"] is None), key=lambda r: (order[r["status"]], r["job"])
    )
    return ranked + rest


# --- writing the summary ---------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}"
    if isinstance(value, list):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return "" if value is None else str(value)


def _csv_value(value: Any) -> str:
    import json

    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "" if value is None else str(value)


def _show(value: Any) -> str:
    """An override's value in the table: short (Optuna samples floats to 17 digits)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return _csv_value(value)


def _override_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Every override key of the sweep, in the order the jobs give them."""
    keys: list[str] = []
    for row in sorted(rows, key=lambda r: r["job"]):
        keys += [k for k in row["overrides"] if k not in keys]
    return keys


def summary_csv(rows: list[dict[str, Any]]) -> str:
    """One line per job: rank, job, status, monitor, value, one column per override key,
    the final metrics, run_dir, error."""
    import csv
    import io

    overrides = _override_keys(rows)
    metrics = sorted({k for r in rows for k in r["metrics"]})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["rank", "job", "status", "monitor", "value", *overrides, *metrics, "run_dir", "error"]
    )
    for r in rows:
        writer.writerow(
            [
                r["rank"] or "",
                r["job"],
                r["status"],
                r["monitor"] or "",
                "" if r["value"] is None else r["value"],
                *(_csv_value(r["overrides"].get(k)) for k in overrides),
                *(r["metrics"].get(k, "") for k in metrics),
                r["run_dir"],
                r["error"] or "",
            ]
        )
    return buf.getvalue()


def summary_table(rows: list[dict[str, Any]], sweep_dir: Path) -> Any:
    """A rich Table of the jobs: the overrides that differ between jobs, the monitored
    metric, test/acc when it is not the monitored one, the run dir (under the sweep dir)."""
    from rich.table import Table

    keys = _override_keys(rows)
    varying = [k for k in keys if len({_csv_value(r["overrides"].get(k)) for r in rows}) > 1]
    monitor = next((r["monitor"] for r in rows if r["rank"]), None)
    mode = next((r["mode"] for r in rows if r["rank"]), None)
    extra = [k for k in ("test/acc",) if k != monitor and any(k in r["metrics"] for r in rows)]
    counts = Counter(r["status"] for r in rows)
    failed = counts["failed"] + counts["unfinished"]
    title = f"sweep: {len(rows)} job{'s' * (len(rows) != 1)}" + "".join(
        f", {counts[s]} {s}" for s in ("failed", "unfinished", "not started") if counts[s]
    )
    if monitor:
        title += f", ranked by {monitor} ({'higher' if mode == 'max' else 'lower'} is better)"
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("job", justify="right")
    table.add_column("status")
    table.add_column(monitor or "metric", justify="right")
    for k in extra:
        table.add_column(k, justify="right")
    for k in varying:
        table.add_column(k)
    table.add_column("run dir")
    if failed:
        table.add_column("error", overflow="fold")
    for r in rows:
        run_dir = Path(r["run_dir"])
        shown = run_dir.relative_to(sweep_dir) if run_dir.is_relative_to(sweep_dir) else run_dir
        shown = shown if r["run_dir"] else ""
        cells = [
            str(r["rank"] or ""),
            str(r["job"]),
            r["status"],
            _fmt(r["value"]),
            *(_fmt(r["metrics"].get(k)) for k in extra),
            *(_show(r["overrides"].get(k)) for k in varying),
            str(shown),
        ]
        if failed:
            cells.append(r["error"] or "")
        style = None if r["status"] == "done" else "red"
        table.add_row(*cells, style=style)
    return table


def write_summary(
    sweep_dir: Path, sweep_id: str | None = None, planned: list[list[str]] | int | None = None
) -> list[dict[str, Any]]:
    """Write sweep_summary.csv and sweep_summary.txt into sweep_dir and print the table."""
    import io

    from rich.console import Console

    from dlx.core.io import atomic_write_text

    sweep_dir = Path(sweep_dir)
    rows = sweep_rows(sweep_dir, sweep_id, planned)
    if all(r["status"] == "not started" for r in rows):
        return []  # the sweep failed before any job ran (Hydra said why): nothing to add
    table = summary_table(rows, sweep_dir)
    atomic_write_text(summary_csv(rows), sweep_dir / SUMMARY_CSV)
    text = io.StringIO()
    Console(file=text, width=200, color_system=None).print(table)
    atomic_write_text(text.getvalue(), sweep_dir / SUMMARY_TXT)
    console = Console()
    if not console.is_terminal:  # a log file or a pipe: no wrapping at 80 columns
        console = Console(width=200)
    console.print(table)
    console.print(f"summary: {sweep_dir / SUMMARY_CSV}", highlight=False, soft_wrap=True)
    return rows
