"""`dlx viz run_dir=<dir>`: redraw a finished run's figures into `<dir>/plots/`.

Reads the run as it was left: the checkpoint's config (or `.hydra/config.yaml`),
metrics.json, metrics.csv, `checkpoints/last.pt` (`ckpt=best` or a path for another one,
loaded with weights_only=True) and a scikit-learn run's predictions.npz / model.npz; the
data set is loaded again from its config (`dataset.root=...` if it moved). A staged run's
figures go into each stage's folder; a multirun's sweep dir gets `plots/sweep.png`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from dlx.errors import ConfigError, reports_errors

log = logging.getLogger("dlx")

USAGE = """usage: dlx viz run_dir=<run dir> [figures=[a,b]] [ckpt=last|best|<path>] [overrides...]

Redraw the figures of a finished `dlx train` run into <run dir>/plots/: those that apply to
its task, model and data (the others are listed as not drawn, with why). Overrides:
dataset.<key>=<value> (e.g. dataset.root=<where the data is now>), viz.<key>=<value>
(samples, feature_map_inputs, max_filters, dpi). A multirun's sweep dir gets
plots/sweep.png: the monitored metric against each swept parameter.
figures: {figures}
"""


def parse_args(argv: list[str]) -> dict[str, Any]:
    args: dict[str, Any] = {"run_dir": None, "ckpt": "last", "figures": None, "overrides": []}
    for arg in argv:
        key, eq, value = arg.partition("=")
        if not eq:
            raise ConfigError(f"dlx viz: {arg!r} is not key=value (dlx viz --help)")
        if key in ("run_dir", "hydra.run.dir"):
            args["run_dir"] = value
        elif key == "ckpt":
            args["ckpt"] = value
        elif key in ("figures", "viz.figures"):
            names = value.strip("[]").split(",")
            args["figures"] = [n.strip() for n in names if n.strip()]
        elif key.startswith(("dataset.", "viz.")):
            args["overrides"].append(arg)
        else:
            raise ConfigError(
                f"dlx viz: unknown option {key!r}; use run_dir=, figures=, ckpt=, "
                "dataset.<key>= or viz.<key>="
            )
    if not args["run_dir"]:
        raise ConfigError("dlx viz needs run_dir=<a run dir of dlx train> (outputs/train/...)")
    return args


def run_dirs(run_dir: Path) -> list[Path]:
    """The folders that hold a trained model: a staged run's stage folders, else itself."""
    stages = sorted(
        (p.parent for p in run_dir.glob("*/checkpoints") if p.parent.name[:1].isdigit()),
        key=lambda p: int(p.name.split("_", 1)[0]) if p.name.split("_", 1)[0].isdigit() else 0,
    )
    return stages or [run_dir]


def viz(argv: list[str]) -> list[Path]:
    from dlx.viz import draw
    from dlx.viz.registry import check_names
    from dlx.viz.run import RunView
    from dlx.viz.sweep import is_sweep_dir, plot_sweep, sweep_rows

    args = parse_args(argv)
    run_dir = Path(args["run_dir"]).expanduser()
    if not run_dir.is_dir():
        raise ConfigError(f"dlx viz: run_dir={run_dir} is not a folder")
    if args["figures"]:
        check_names(args["figures"], "figures")
    if is_sweep_dir(run_dir):
        path = plot_sweep(run_dir, sweep_rows(run_dir))
        print(f"dlx viz: {path}")
        return [path]
    written: list[Path] = []
    for folder in run_dirs(run_dir):
        view = RunView.from_dir(folder, args["ckpt"], args["overrides"])
        paths, skipped = draw(view, args["figures"])
        written += paths
        where = folder / "plots"
        names = ", ".join(p.stem for p in paths)
        print(f"dlx viz: {len(paths)} figure{'s' * (len(paths) != 1)} in {where}: {names}")
        if skipped:
            print(f"  not drawn: {_reasons(skipped)}")
        if not paths:  # every run has some figure; none means its data or model is missing
            raise ConfigError(f"dlx viz: no figure drawn for {folder} ({_reasons(skipped)})")
    return written


def _reasons(skipped: dict[str, str]) -> str:
    """`a, b (why); c (why)`: figures skipped for one reason (an unusable file) share it."""
    names: dict[str, list[str]] = {}
    for name, why in skipped.items():
        names.setdefault(why, []).append(name)
    return "; ".join(f"{', '.join(n)} ({why})" for why, n in names.items())


@reports_errors
def main(argv: list[str]) -> None:
    if any(a in ("-h", "--help") for a in argv):
        from dlx.viz.registry import figures

        sys.stdout.write(USAGE.format(figures=", ".join(figures())))
        return
    viz(argv)
