"""Shared fixtures: tiny data files in the real formats, and a runner for the real CLI."""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

BIN = Path(sys.executable).parent
DLX = str(BIN / "dlx")
DEVICES = ("cpu", "cuda")


# -- devices: the tests that take `device` run once per chosen device (`make test-gpu`) -----------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        default=None,
        help="devices for the tests that take `device` (marked `device`): cpu, cuda or "
        "cpu,cuda; default: $DLX_TEST_DEVICE, else cuda where torch sees one, else cpu",
    )


def chosen_devices(config: pytest.Config) -> list[str]:
    """--device, else DLX_TEST_DEVICE, else the one device a user's `auto` would train on
    (mps aside): on a CPU machine the suite runs as it always did, once, on the CPU."""
    if not hasattr(config, "_dlx_devices"):
        wanted = config.getoption("--device") or os.environ.get("DLX_TEST_DEVICE") or "auto"
        import torch

        has_cuda = torch.cuda.is_available()
        if wanted == "auto":
            devices = ["cuda" if has_cuda else "cpu"]
        else:
            devices = list(dict.fromkeys(d.strip() for d in wanted.split(",") if d.strip()))
        bad = [d for d in devices if d not in DEVICES]
        if bad or not devices:
            raise pytest.UsageError(
                f"--device (DLX_TEST_DEVICE) = {wanted}: choose from auto, {', '.join(DEVICES)}"
            )
        if "cuda" in devices and not has_cuda:
            # Asked for by name: a silent CPU run would pass for a GPU proof.
            raise pytest.UsageError(
                f"--device (DLX_TEST_DEVICE) = {wanted} asks for CUDA and "
                f"torch.cuda.is_available() is False (torch {torch.__version__})"
            )
        config._dlx_devices = devices  # type: ignore[attr-defined]
    return config._dlx_devices  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--device") or os.environ.get("DLX_TEST_DEVICE"):
        chosen_devices(config)  # a bad choice stops the run here, in one line
    if "DLX_CACHE_DIR" not in os.environ:  # in-process code too (the C LSTM's build): not ~/.cache
        config._dlx_cache = tempfile.mkdtemp(prefix="dlx-test-cache-")  # type: ignore[attr-defined]
        os.environ["DLX_CACHE_DIR"] = config._dlx_cache  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "_dlx_cache"):
        shutil.rmtree(config._dlx_cache, ignore_errors=True)
        os.environ.pop("DLX_CACHE_DIR", None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Also through fixtures (a module's trained run): each device gets its own instance.
    if "device" in metafunc.fixturenames:
        params = [
            pytest.param(d, marks=pytest.mark.device) for d in chosen_devices(metafunc.config)
        ]
        metafunc.parametrize("device", params, indirect=True, scope="session")


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> str:
    """ "cpu" or "cuda": pass it on as `trainer.accelerator` / `Trainer(accelerator=...)`."""
    return request.param


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
