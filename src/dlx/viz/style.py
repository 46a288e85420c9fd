"""Shared drawing helpers: figures of a fixed pixel size, saved atomically as PNG; image
tiles and mosaics. matplotlib is imported here, only when a figure is drawn, and only its
object API is used (no pyplot state; PNGs render through Agg, no display needed).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from dlx.core.io import atomic_write_bytes


def new_figure(width: float, height: float, dpi: int = 100) -> Any:
    """A figure of width x height inches; its PNG is exactly (width*dpi, height*dpi) px."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=dpi)


def save_png(fig: Any, path: Path, dpi: int = 100) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)  # no bbox_inches: the size stays as designed
    atomic_write_bytes(buf.getvalue(), path)
    return path


def image_shape(spec: Any) -> tuple[int, int, int] | None:
    """(channels, height, width) to draw a sample as an image, or None (token ids, tables).
    Flat vectors of a square size (the nudged digits' 64) are drawn as squares."""
    if spec.vocab_size is not None:
        return None
    shape = tuple(int(s) for s in spec.input_shape)
    if len(shape) == 3 and shape[0] in (1, 3):
        return shape  # type: ignore[return-value]
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) == 1:
        side = math.isqrt(shape[0])
        if side > 1 and side * side == shape[0]:
            return (1, side, side)
    return None


def tile_shape(size: int) -> tuple[int, int]:
    """A near-square (height, width) for a vector of `size` values (a code of 144: 12 x 12)."""
    h = math.isqrt(size)
    while size % h:
        h -= 1
    return h, size // h


def as_images(x: np.ndarray, chw: tuple[int, int, int]) -> np.ndarray:
    """[n, ...] samples -> [n, H, W] (one channel) or [n, H, W, 3] (colour) for imshow."""
    c, h, w = chw
    x = np.asarray(x, dtype=np.float32).reshape(len(x), c, h, w)
    return x[:, 0] if c == 1 else x.transpose(0, 2, 3, 1)


def normalise(tiles: np.ndarray) -> np.ndarray:
    """Scale each tile to [0, 1] on its own (as imshow does per subplot); flat tiles -> 0."""
    flat = tiles.reshape(len(tiles), -1)
    lo = flat.min(axis=1, keepdims=True)
    span = flat.max(axis=1, keepdims=True) - lo
    return ((flat - lo) / np.where(span > 0, span, 1.0)).reshape(tiles.shape)


def mosaic(tiles: np.ndarray, cols: int, pad: int = 1) -> np.ndarray:
    """Tiles [n, h, w(, 3)] laid out in rows of `cols`, separated by NaN (drawn blank):
    one imshow instead of n subplots, so hundreds of tiles draw in milliseconds."""
    n, h, w = tiles.shape[:3]
    rows = math.ceil(n / cols)
    extra = tiles.shape[3:]
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, *extra), np.nan, np.float32)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = tile
    return out


def show(ax: Any, image: np.ndarray, cmap: str = "gray_r", **kwargs: Any) -> None:
    """imshow without axes; NaN (mosaic gaps) drawn white."""
    import matplotlib

    if image.ndim == 3:  # colour: NaN gaps -> white
        image = np.where(np.isnan(image), 1.0, image).clip(0, 1)
        ax.imshow(image, interpolation="nearest", **kwargs)
    else:
        cm = matplotlib.colormaps[cmap].with_extremes(bad="white")
        ax.imshow(image, cmap=cm, interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
