"""Decoding image files: one file to a uint8 array, the way every image data set sees it."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

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
    Any mode (grey, 16-bit grey, RGB, RGBA, palette, CMYK ...) is converted, a photo's EXIF
    orientation applied, other sizes resized."""
    from PIL import Image, UnidentifiedImageError

    try:
        # Image.open reads only the header; PIL warns about (or, at twice its limit,
        # refuses) a declared size past MAX_IMAGE_PIXELS. As an error, a decompression
        # bomb (a tiny file declaring billions of pixels) is refused before decoding.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img = _convert(_upright(img, width, height), _MODES[channels])
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


# EXIF orientations that turn the picture a quarter: its width and height swap
_QUARTER_TURNS = (5, 6, 7, 8)


def _upright(img: Any, width: int, height: int) -> Any:
    """The picture as a viewer shows it: a phone photo's EXIF orientation applied. A JPEG
    much larger than wanted is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling,
    never below the size asked for): a 12-megapixel photo for a 224x224 input in a tenth of
    the time."""
    from PIL import ImageOps

    orientation = img.getexif().get(0x0112, 1)  # 0x0112: Orientation
    if img.format == "JPEG":
        img.draft(None, (height, width) if orientation in _QUARTER_TURNS else (width, height))
    return ImageOps.exif_transpose(img) if orientation != 1 else img


def _convert(img: Any, mode: str) -> Any:
    """img.convert(mode), right for the modes it gets wrong: 16-bit grey ("I;16", and "I"
    as older Pillows open such PNGs) is scaled to 8 bits where convert would clip every
    value above 255 to white; a palette with transparency goes through RGBA (Pillow warns
    on every such image otherwise). Alpha is dropped, as torchvision's and Keras' loaders do."""
    from PIL import Image

    if img.mode.startswith("I;16") or img.mode == "I":
        grey = np.clip(np.asarray(img), 0, 65535).astype(np.uint16) >> 8
        img = Image.fromarray(grey.astype(np.uint8))
    elif img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert(mode)
