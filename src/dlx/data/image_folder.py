"""Users' own images: a folder of `<class>/<image>` files, decoded once into a uint8 cache.

Layouts (torchvision's ImageFolder convention; classes are the sorted folder names):
- `root/train/<class>/*` and `root/test/<class>/*`: the given split;
- `root/<class>/*`: `test_size` of it is held out (`train_test_split`'s permutation).
Every image (grey, 16-bit grey, RGB, RGBA, palette, CMYK ...) is converted to `channels`
(1: grey, 3: RGB), turned upright by its EXIF orientation and resized to `image_size` when it
differs (dlx/data/images.py). By default the folder is decoded once into a uint8
cache and trained from memory like the built-in sets (uint8 NCHW scaled by 1/255); with
`in_memory=false` images are decoded on the fly by DataLoader workers (data past memory),
and may be augmented (`random_crop`, `random_flip`: data/augment.py). The training order is
a seeded permutation, so `val_split` (its last fraction) holds every class rather than the
last folder's. Files that do not decode are listed in one warning and left out (or refused,
with `strict=true`); a decompression bomb is refused, never decoded.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from dlx.core.data import AnySplit, Spec, Split, StreamSplit
from dlx.core.errors import ConfigError, DataError
from dlx.data.augment import Augment
from dlx.data.base import Dataset, check_test_size
from dlx.data.cache import Field, Layout, split_fields
from dlx.data.digits import book_split
from dlx.data.images import FolderSamples, Unreadable, decode

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
_MODES = (1, 3)
log = logging.getLogger("dlx")

Listing = list[tuple[str, int]]  # (path relative to root, class index)


def _list_classes(folder: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(folder) if e.is_dir() and e.name[0] != ".")
    except OSError as err:
        raise DataError(f"cannot list image folder {folder} ({err})") from None


def _list_images(folder: Path, classes: Sequence[str], root: Path) -> Listing:
    out: Listing = []
    for index, cls in enumerate(classes):
        sub = folder / cls
        if not sub.is_dir():
            continue  # a class present in train/ may be missing from test/
        for dirpath, dirnames, filenames in os.walk(sub):
            dirnames.sort()
            rel = Path(dirpath).relative_to(root)
            out += [
                ((rel / f).as_posix(), index)
                for f in sorted(filenames)
                if f.lower().endswith(EXTENSIONS)
            ]
    return out


class ImageFolder(Dataset):
    name = "image_folder"
    scale = 1.0 / 255.0
    pixel_max = 255

    def __init__(
        self,
        root: str | Path | None = None,
        image_size: int | Sequence[int] = 32,
        channels: int = 3,
        test_size: float = 0.2,
        random_state: int = 2017,
        in_memory: bool = True,
        random_crop: int = 0,
        random_flip: bool = False,
        strict: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if root is None:
            raise ConfigError("dataset=image_folder needs dataset.root=<folder of images>")
        size = [image_size] * 2 if isinstance(image_size, int) else list(image_size or [])
        if len(size) != 2 or not all(isinstance(s, int) and s >= 1 for s in size):
            raise ConfigError(f"dataset.image_size={image_size} must be N or [height, width]")
        if channels not in _MODES:
            raise ConfigError(f"dataset.channels={channels} must be 1 (grey) or 3 (RGB)")
        check_test_size(test_size)
        self.root = Path(root).expanduser()
        self.height, self.width = size
        self.channels = channels
        self.test_size = test_size
        self.random_state = random_state
        if random_crop < 0:
            raise ConfigError(f"dataset.random_crop={random_crop} must be >= 0 (pixels of padding)")
        if (random_crop or random_flip) and in_memory:
            raise ConfigError(
                "dataset.random_crop and dataset.random_flip augment images as they are read: "
                "set dataset.in_memory=false"
            )
        self.in_memory, self.strict = in_memory, strict
        self.augment = Augment(random_crop, random_flip) if random_crop or random_flip else None

    @cached_property
    def layout(self) -> tuple[Path, Path | None, list[str]]:
        """(train folder, test folder or None, class names), from the folder listing."""
        if not self.root.is_dir():
            raise DataError(
                f"image folder {self.root} does not exist; set dataset.root to a folder of "
                "<class>/<image> files"
            )
        train, test = self.root / "train", self.root / "test"
        if train.is_dir() and test.is_dir():
            classes = _list_classes(train)
            extra = sorted(set(_list_classes(test)) - set(classes))
            if extra:
                raise DataError(f"{test} has classes that {train} lacks: {', '.join(extra)}")
            folder, held_out = train, test
        else:
            folder, held_out, classes = self.root, None, _list_classes(self.root)
        if not classes:
            raise DataError(
                f"image folder {folder} is empty: expected one sub-folder of images per class"
            )
        return folder, held_out, classes

    @property
    def source_spec(self) -> Spec:
        classes = self.layout[2]
        return Spec(
            input_shape=(self.channels, self.height, self.width),
            num_classes=len(classes),
            class_names=tuple(classes),
        )

    def _decode(self, rel: str) -> np.ndarray:
        return decode(self.root / rel, self.channels, self.height, self.width)

    def _decode_all(self, listing: Listing) -> tuple[torch.Tensor, torch.Tensor]:
        x = np.empty((len(listing), self.channels, self.height, self.width), dtype=np.uint8)
        # One thread: small images cost ~0.2 ms each, mostly Python-side work that holds the
        # GIL (a thread pool measured no faster on CIFAR-sized JPEGs).
        bad: list[str] = []
        keep = np.ones(len(listing), dtype=bool)
        for i, (rel, _) in enumerate(listing):
            try:
                x[i] = self._decode(rel)
            except Unreadable as err:
                if self.strict:
                    raise DataError(str(err)) from None
                bad.append(rel)
                keep[i] = False
        if bad:
            log.warning(
                "image folder %s: %d file(s) do not decode and are left out (dataset.strict=true "
                "refuses them): %s",
                self.root,
                len(bad),
                ", ".join(bad[:10]) + (" ..." if len(bad) > 10 else ""),
            )
        y = np.fromiter((c for _, c in listing), dtype=np.int64, count=len(listing))
        return torch.from_numpy(x[keep]), torch.from_numpy(y[keep])

    def _stream(self, listing: Listing, train: bool) -> StreamSplit:
        files = [rel for rel, _ in listing]
        samples = FolderSamples(self.root, files, self.channels, (self.height, self.width))
        y = torch.tensor([c for _, c in listing], dtype=torch.int64)
        return StreamSplit(samples, y, augment=self.augment if train else None)

    def read(self) -> tuple[AnySplit, AnySplit | None]:
        folder, held_out, classes = self.layout
        train_list = _list_images(folder, classes, self.root)
        test_list = _list_images(held_out, classes, self.root) if held_out else []
        if not train_list:
            raise DataError(
                f"image folder {folder} holds no images ({', '.join(EXTENSIONS)}) in its "
                "class folders"
            )
        if held_out is None and self.test_size:
            train_idx, test_idx = book_split(len(train_list), self.test_size, self.random_state)
            test_list = [train_list[i] for i in test_idx]
            train_list = [train_list[i] for i in train_idx]
        else:
            rng = np.random.RandomState(self.random_state)
            train_list = [train_list[i] for i in rng.permutation(len(train_list))]
            # The test folder's listing is by class: in a seeded order, the first batches
            # (trainer.limit_eval_batches) hold every class, not the first one.
            test_list = [test_list[i] for i in rng.permutation(len(test_list))]
        if not self.in_memory:  # decoded as the batches are read
            test = self._stream(test_list, train=False) if test_list else None
            return self._stream(train_list, train=True), test
        settings = {
            "listing": self._fingerprint(train_list, test_list),
            "size": [self.height, self.width],
            "channels": self.channels,
            # 2: EXIF orientation, 16-bit grey scaled, JPEG draft (images.py); a cache
            # decoded otherwise is not reused
            "decoder": 2,
        }

        def build() -> dict[str, torch.Tensor]:
            out = {}
            for split, listing in (("train", train_list), ("test", test_list)):
                if listing:
                    out[f"{split}_x"], out[f"{split}_y"] = self._decode_all(listing)
            return out

        # The test split is there exactly when the listing has test images.
        splits = ("train", "test") if test_list else ("train",)
        pixels = Field(torch.uint8, (self.channels, self.height, self.width))
        t = self.cached(settings, build, Layout(split_fields(splits, pixels, len(classes))))
        test = Split(t["test_x"], t["test_y"]) if "test_x" in t else None
        return Split(t["train_x"], t["train_y"]), test

    def _fingerprint(self, train: Listing, test: Listing) -> str:
        """One hash of every file's path, class, size and mtime, in split order."""
        h = hashlib.sha256()
        for tag, listing in (("train", train), ("test", test)):
            h.update(tag.encode())
            for rel, cls in listing:
                st = os.stat(self.root / rel)
                h.update(f"{rel}\0{cls}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()
