"""Run dirs that never collide.

Hydra names a run dir by the second (outputs/train/<date>/<HH-MM-SS>, hydra#1817): two runs
started in the same second shared one dir and overwrote each other's files. Before Hydra
writes anything (RunChecks.on_run_start, SweepSummary.on_multirun_start), dlx claims the dir:
it creates the run's `.hydra/` folder (a sweep: the sweep dir) with one `mkdir`, which only
one process can do; a run that loses gets the next free name, `<time>_1`, `<time>_2`, ...

A dir named on the command line (`hydra.run.dir=X`) is taken as given: when it holds
another run, the run is refused in one line, unless it continues that run
(`trainer.resume=...`). A sweep dir named on the command line that holds a sweep is refused
unless `sweep.resume=true` continues it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict, read_write

from dlx.core.errors import ConfigError
from dlx.core.io import check_writable

# What a folder holds once a run has used it.
RUN_FILES = (".hydra", "metrics.json", "checkpoints", "job_status.json")
MAX_SUFFIX = 1000


def named(config: DictConfig, key: str) -> bool:
    """Whether the command line set this hydra key (hydra.run.dir, hydra.sweep.dir)."""
    return any(
        str(o).lstrip("+").split("=", 1)[0] == key for o in config.hydra.overrides.hydra or []
    )


def holds_run(folder: Path) -> str | None:
    """What in `folder` shows that a run used it, or None."""
    return next((name for name in RUN_FILES if (folder / name).exists()), None)


def _claim(folder: Path, marker: str | None) -> bool:
    """Create folder/marker (or folder itself) in one mkdir; False if it exists already."""
    check_writable(folder.parent if marker is None else folder)
    try:
        os.mkdir(folder if marker is None else folder / marker)
    except FileExistsError:
        return False
    except OSError as err:
        raise ConfigError(f"cannot create the run dir {folder}: {err.strerror or err}") from None
    return True


def _free(folder: Path, marker: str | None) -> Path:
    """folder, or folder_1, folder_2, ...: the first one this process could claim."""
    for n in range(MAX_SUFFIX):
        candidate = folder if n == 0 else folder.with_name(f"{folder.name}_{n}")
        if (marker is None or not holds_run(candidate)) and _claim(candidate, marker):
            return candidate
    raise ConfigError(f"{folder}: {MAX_SUFFIX} runs already use this name; set hydra.run.dir")


def claim_run_dir(config: DictConfig, resume: bool) -> tuple[Path, bool]:
    """The run dir this run may write into (config.hydra.run.dir is set to it), and whether
    this run created it. `resume`: the run continues one (trainer.resume)."""
    folder = Path(str(config.hydra.run.dir)).expanduser()
    existed = folder.exists()
    marker = config.hydra.output_subdir
    if named(config, "hydra.run.dir"):
        if resume:
            return folder, False
        used = holds_run(folder)
        if used is None and marker is not None and not _claim(folder, marker):
            used = marker  # another process claimed it a moment ago
        if used is not None:
            hint = (
                ", or continue that run with trainer.resume=auto"
                if config.hydra.job.name == "train"
                else " (or leave hydra.run.dir out)"
            )
            raise ConfigError(
                f"hydra.run.dir={folder} holds another run (its {used}); give a new dir{hint}"
            )
        if marker is None:
            check_writable(folder)
        return folder, not existed
    claimed = _free(folder, marker)
    _set(config, "run", claimed)
    return claimed, claimed != folder or not existed


def claim_sweep_dir(config: DictConfig, resume: bool) -> Path:
    """The sweep dir of this multirun: named and resumed, as given; named and holding a
    sweep, refused; Hydra's timestamped name, claimed (with a suffix if it is taken)."""
    folder = Path(str(config.hydra.sweep.dir)).expanduser()
    if named(config, "hydra.sweep.dir"):
        if not resume and any(folder.glob(f"**/{RUN_FILES[3]}")):
            raise ConfigError(
                f"hydra.sweep.dir={folder} holds a sweep already; continue it with "
                "sweep.resume=true, or give a new dir"
            )
        return folder
    if resume:
        raise ConfigError(
            "sweep.resume=true continues a sweep: name its dir with hydra.sweep.dir=<dir>"
        )
    claimed = _free(folder, None)
    if claimed != folder:
        _set(config, "sweep", claimed)
        # Each job composes its config again from the command line's overrides: it must
        # find this dir there.
        with read_write(config.hydra.overrides), open_dict(config.hydra.overrides):
            config.hydra.overrides.hydra.append(f"hydra.sweep.dir={quoted(str(claimed))}")
    return claimed


def _set(config: DictConfig, node: str, folder: Path) -> None:
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra[node].dir = str(folder)


def quoted(value: str) -> str:
    """A value as Hydra's override grammar takes it: quoted unless it is a plain word."""
    if re.fullmatch(r"[\w/.\-:~+@]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def keep_record(config: DictConfig, run_dir: Path) -> Any:
    """A run that continues another keeps the other's `.hydra/` record: this one's goes to
    `.hydra/resumes/<n>/`, listed in resumes.jsonl. Returns n, or None (nothing to keep)."""
    import json
    import time

    subdir = config.hydra.output_subdir
    if subdir is None or not (run_dir / subdir / "config.yaml").is_file():
        return None
    resumes = run_dir / subdir / "resumes"
    n = len(list(resumes.glob("*"))) + 1 if resumes.is_dir() else 1
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra.output_subdir = f"{subdir}/resumes/{n}"
    line = {"resume": n, "time": time.time(), "overrides": list(config.hydra.overrides.task)}
    with open(run_dir / "resumes.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")
    return n
