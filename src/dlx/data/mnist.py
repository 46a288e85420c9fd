"""MNIST from the four official IDX gz files, in torchvision's layout `<root>/MNIST/raw/`."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from dlx.core.data import Spec, Split
from dlx.core.errors import DataError
from dlx.data.base import Dataset
from dlx.data.cache import Field, Layout, file_fingerprint, split_fields
from dlx.data.download import download_files
from dlx.data.idx import read_idx

log = logging.getLogger(__name__)

# file stem -> md5 of the official .gz (as in torchvision.datasets.MNIST.resources)
FILES = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


class MNIST(Dataset):
    name = "mnist"
    scale = 1.0 / 255.0
    pixel_max = 255
    mirrors: tuple[str, ...] = MIRRORS
    files_md5: dict[str, str] = FILES

    def __init__(self, root: str | Path = "data", **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()

    @property
    def raw_dir(self) -> Path:
        return self.root / "MNIST" / "raw"

    @property
    def source_spec(self) -> Spec:
        return Spec(
            input_shape=(1, 28, 28), num_classes=10, class_names=tuple(str(i) for i in range(10))
        )

    def _path(self, stem: str) -> Path | None:
        # torchvision keeps the .gz and an extracted copy; either one will do.
        for candidate in (self.raw_dir / f"{stem}.gz", self.raw_dir / stem):
            if candidate.is_file():
                return candidate
        return None

    def files(self) -> dict[str, Path]:
        missing = [stem for stem in self.files_md5 if self._path(stem) is None]
        if missing and self.download:
            wanted = {f"{s}.gz": self.files_md5[s] for s in missing}
            download_files(wanted, self.mirrors, self.raw_dir, what="MNIST")
            missing = [stem for stem in self.files_md5 if self._path(stem) is None]
        if missing:
            raise DataError(
                f"MNIST files missing in {self.raw_dir}: {', '.join(m + '.gz' for m in missing)}; "
                "set dataset.root (or DLX_DATA_DIR) to the folder holding MNIST/raw/, "
                "or allow dataset.download=true"
            )
        return {stem: self._path(stem) for stem in self.files_md5}  # type: ignore[misc]

    def read(self) -> tuple[Split, Split]:
        files = self.files()
        settings = {"files": [file_fingerprint(p) for p in files.values()]}

        def build() -> dict[str, torch.Tensor]:
            arrays = {
                "train_x": read_idx(files["train-images-idx3-ubyte"], 3),
                "train_y": read_idx(files["train-labels-idx1-ubyte"], 1),
                "test_x": read_idx(files["t10k-images-idx3-ubyte"], 3),
                "test_y": read_idx(files["t10k-labels-idx1-ubyte"], 1),
            }
            for split in ("train", "test"):
                nx, ny = len(arrays[f"{split}_x"]), len(arrays[f"{split}_y"])
                if nx != ny:
                    raise DataError(f"MNIST {split}: {nx} images but {ny} labels in {self.raw_dir}")
            return {
                k: torch.from_numpy(v).unsqueeze(1)
                if k.endswith("_x")
                else torch.from_numpy(v).long()
                for k, v in arrays.items()
            }

        pixels = Field(torch.uint8, self.source_spec.input_shape)
        layout = Layout(split_fields(("train", "test"), pixels, self.source_spec.num_classes))
        t = self.cached(settings, build, layout)
        return Split(t["train_x"], t["train_y"]), Split(t["test_x"], t["test_y"])
