"""Decoding image files: one file to a uint8 array, the way every image data set sees it."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from dlx.core.errors import DataError

_MODES = {1: "L", 3: "RGB"}


class Unreadable(DataError):
    """An image file that does not decode (corrupt, truncated, not an image)."""


class FolderSamples:
    """Images decoded when read (by DataLoader workers): a streamed split's source."""

    def __init__(self, root: Path, files: list[str], channels: int, size: tuple[int, int]):
        self.root, self.files, self.channels, self.size = root, files, channels, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(decode(self.root / self.files[i], self.channels, *self.size))


def decode(path: Path, channels: int, height: int, width: int) -> np.ndarray:
    """One image file -> uint8 [channels, height, width]; DataError in one line if not.
    Any mode (grey, RGB, RGBA, palette ...) is converted; other sizes are resized."""
    from PIL import Image, UnidentifiedImageError

    try:
        # Image.open reads only the header; PIL warns about (or, at twice its limit,
        # refuses) a declared size past MAX_IMAGE_PIXELS. As an error, a decompression
        # bomb (a tiny file declaring billions of pixels) is refused before decoding.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img = img.convert(_MODES[channels])
                if img.size != (width, height):
                    img = img.resize((width, height), Image.Resampling.BILINEAR)
                arr = np.array(img, dtype=np.uint8)  # a writable copy (torch wants one)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise DataError(
            f"refused image {path}: {str(err).split(', could be')[0]} (a possible "
            "decompression bomb); remove it, or shrink it below that size"
        ) from None
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise Unreadable(f"cannot decode image {path} ({err})") from None
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))
