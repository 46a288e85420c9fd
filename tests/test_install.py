"""A non-editable install carries its configs: `dlx train` works from any folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_install_ships_configs(tmp_path, cli_env):
    target = tmp_path / "site"
    # Build from a copy: an in-tree build would leave build/ and egg-info in the checkout.
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".git",
            "build",
            "outputs",
            "*.egg-info",
            "__pycache__",
            ".pytest_cache",
            ".ruff_cache",
        ),
    )
    # --no-build-isolation: build with this environment's setuptools, offline.
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    assert (target / "dlx" / "configs" / "train.yaml").is_file()
    assert (target / "dlx" / "configs" / "optimizer" / "adam.yaml").is_file()
    assert (target / "dlx" / "configs" / "hydra" / "job_logging" / "dlx.yaml").is_file()
    assert (target / "dlx" / "configs" / "predict.yaml").is_file()
    assert (target / "dlx" / "configs" / "export.yaml").is_file()

    env = {**cli_env, "PYTHONPATH": str(target)}
    run_dir = tmp_path / "run"
    cwd = tmp_path / "somewhere"
    cwd.mkdir()
    code = "import dlx, sys; from dlx.cli import main; print(dlx.__file__); main(sys.argv[1:])"
    out = subprocess.run(
        [sys.executable, "-c", code, "train", "debug=smoke", f"hydra.run.dir={run_dir}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].startswith(str(target))  # not the source tree
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 1
    assert os.listdir(cwd) == []
