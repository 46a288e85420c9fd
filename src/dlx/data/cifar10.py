"""CIFAR-10 from the official `cifar-10-batches-py` pickles: 50,000 / 10,000 uint8 NCHW.

The batches were pickled by Python 2; they load with `encoding="latin1"` (keys are str) or
`"bytes"` (keys are bytes), and copies re-created by users may use either. Reading checks
structure, not the official md5s, so a re-created copy loads; only a download is
md5-checked. Pickles can run code when loaded, so only the numpy globals an array needs
are allowed in.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlx.core.data import Spec, Split
from dlx.core.errors import DataError
from dlx.data.archive import extract_tar
from dlx.data.base import Dataset
from dlx.data.cache import Field, Layout, file_fingerprint, split_fields
from dlx.data.download import download_files

CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
FOLDER = "cifar-10-batches-py"
TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST = ("test_batch",)
ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)

# The only globals a batch may name: what numpy needs to rebuild an array (numpy 1 and 2
# spell the module differently) and what Python 3 pickles of bytes use.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a batch never does")
        with warnings.catch_warnings():  # numpy 2 warns about the numpy.core alias
            warnings.simplefilter("ignore")
            return super().find_class(module, name)


def _unpickle(path: Path) -> dict[str, Any]:
    hint = "delete the folder and download it again, or rebuild it"
    try:
        with open(path, "rb") as f:
            obj = _BatchUnpickler(f, encoding="latin1").load()
    except FileNotFoundError:
        raise DataError(f"CIFAR-10 file {path} is missing; {hint}") from None
    except Exception as err:  # a truncated or foreign pickle fails in many ways
        msg = str(err).splitlines()[0] if str(err) else "truncated"
        raise DataError(
            f"{path} is not a readable CIFAR-10 batch ({type(err).__name__}: {msg}); {hint}"
        ) from None
    if not isinstance(obj, dict):
        raise DataError(f"{path} holds a {type(obj).__name__}, not a CIFAR-10 batch dict")
    # encoding="latin1" turns py2 str keys into str; a py3 pickle may still use bytes keys
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (images [N, 3, 32, 32] uint8, labels [N] int64), checked."""
    batch = _unpickle(path)
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise DataError(
            f"{path} is not a CIFAR-10 batch (keys {sorted(batch)[:6]}; expected data, labels)"
        )
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(
            f"{path}: data is {data.dtype} {list(data.shape)}, expected uint8 [N, 3072]"
        )
    y = np.asarray(labels, dtype=np.int64)
    if y.shape != (len(data),):
        raise DataError(f"{path}: {len(data)} images but {y.size} labels")
    if y.size and (y.min() < 0 or y.max() >= len(CLASSES)):
        raise DataError(f"{path}: labels outside 0..9 ({int(y.min())}..{int(y.max())})")
    return data.reshape(-1, 3, 32, 32), y


class CIFAR10(Dataset):
    name = "cifar10"
    scale = 1.0 / 255.0
    pixel_max = 255
    mirrors: tuple[str, ...] = MIRRORS
    archive_md5: str = ARCHIVE_MD5

    def __init__(self, root: str | Path = "data", **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()

    @property
    def folder(self) -> Path:
        return self.root / FOLDER

    @property
    def source_spec(self) -> Spec:
        return Spec(input_shape=(3, 32, 32), num_classes=10, class_names=CLASSES)

    def files(self) -> list[Path]:
        paths = [self.folder / name for name in (*TRAIN, *TEST)]
        missing = [p.name for p in paths if not p.is_file()]
        if missing and self.download:
            if not (self.root / ARCHIVE).is_file():  # a copy put there by hand is used as is
                download_files(
                    {ARCHIVE: self.archive_md5}, self.mirrors, self.root, what="CIFAR-10"
                )
            extract_tar(self.root / ARCHIVE, self.root, FOLDER)
            missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise DataError(
                f"CIFAR-10 files missing in {self.folder}: {', '.join(missing)}; set "
                f"dataset.root (or DLX_DATA_DIR) to the folder holding {FOLDER}/, "
                "or allow dataset.download=true"
            )
        return paths

    def read(self) -> tuple[Split, Split]:
        paths = self.files()
        settings = {"files": [file_fingerprint(p) for p in paths]}

        def build() -> dict[str, torch.Tensor]:
            out = {}
            for split, names in (("train", TRAIN), ("test", TEST)):
                parts = [read_batch(self.folder / n) for n in names]
                out[f"{split}_x"] = torch.from_numpy(np.concatenate([x for x, _ in parts]))
                out[f"{split}_y"] = torch.from_numpy(np.concatenate([y for _, y in parts]))
            return out

        pixels = Field(torch.uint8, self.source_spec.input_shape)
        layout = Layout(split_fields(("train", "test"), pixels, len(CLASSES)))
        t = self.cached(settings, build, layout)
        return Split(t["train_x"], t["train_y"]), Split(t["test_x"], t["test_y"])
