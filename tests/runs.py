"""Tiny real training runs in the test process (compose + dlx.train.run), and a PNG check."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from dlx.compose import compose
from dlx.train import run

# metrics.json keys that are timings: they differ between otherwise identical runs
TIMING = ("wall_time_s", "epoch_time_s", "train_samples_per_s", "startup_s", "compile_time_s")


def sigterm_during_training(cmd: list[str], env: dict[str, str]) -> tuple[int, str, float]:
    """Start `cmd`, send SIGTERM once its second epoch is under way; (exit code, stderr,
    seconds from the signal to the exit)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # wait until training is under way
            if line.startswith("epoch 2/"):
                break
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        proc.kill()
    return proc.returncode, err, took


def train(
    root: Path, *overrides: str, name: str = "run", logger: str = "csv"
) -> tuple[Path, dict[str, Any]]:
    """Run `dlx train <overrides>` in this process into root/name; (run dir, metrics)."""
    cfg = compose(
        "train",
        [
            "trainer.progress=false",
            f"paths.output_dir={root / 'outputs'}",
            f"paths.cache_dir={root / 'cache'}",
            f"logger={logger}",
            *overrides,
        ],
    )
    run_dir = root / name
    return run_dir, run(cfg, run_dir)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG that decodes completely (signature, chunks, CRCs, pixels)."""
    from PIL import Image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG"
        return image.size


def pixels(path: Path) -> Any:
    """The PNG's RGB pixels as a numpy array [h, w, 3]."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def resave(ckpt: dict[str, Any], path: Path) -> None:
    """Write a checkpoint changed by a test as dlx would: with its checksum recomputed (the
    way anyone editing a file can; the checksum catches damage, not an author)."""
    import torch

    from dlx.engine.checkpoint import checksum

    torch.save({**ckpt, "checksum": checksum(ckpt)}, path)
