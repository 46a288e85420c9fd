"""Tiny real training runs in the test process (compose + dlx.train.run), and a PNG check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlx.compose import compose
from dlx.train import run


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
