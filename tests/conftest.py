"""Shared fixtures: tiny data files in the real formats, and a runner for the real CLI."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BIN = Path(sys.executable).parent
DLX = str(BIN / "dlx")


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> None:
    """Write `array` (uint8) in the IDX format MNIST ships in."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def make_mnist(root: Path, n_train: int = 200, n_test: int = 100, seed: int = 0) -> Path:
    """A tiny MNIST in torchvision's layout whose classes are easy to tell apart:
    each digit class lights its own band of rows."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(y):
            x[i, 2 * label : 2 * label + 3, :] = 255
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", y)
    return root


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mnist(tmp_path_factory.mktemp("mnist"))


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for CLI subprocesses: private cache, data and output folders."""
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    env.update(
        DLX_CACHE_DIR=str(tmp_path / "cache"),
        DLX_DATA_DIR=str(tmp_path / "no-data"),
        DLX_OUTPUT_DIR=str(tmp_path / "outputs"),
        PYTHONUNBUFFERED="1",
    )
    monkeypatch.setenv("DLX_CACHE_DIR", env["DLX_CACHE_DIR"])
    return env


def run_dlx(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the installed `dlx` console script, as a user would."""
    return subprocess.run(
        [DLX, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
