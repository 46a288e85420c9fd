"""IMDB Large Movie Review Dataset v1.0 (Maas et al. 2011): 25,000 / 25,000 reviews.

Two layouts are read, whichever `root` holds first:
- the official tree `aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt` (what the official
  archive extracts to; downloaded and extracted safely when allowed);
- `imdb/{train,test}.jsonl.gz`, one `{"text": ..., "label": 0|1}` per line.
Reviews are taken negatives then positives, each by numeric id (the jsonl copy is stored in
that order), then shuffled with Keras' imdb seed (113) so `val_split` holds both classes.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from dlx.core.errors import DataError
from dlx.data.archive import extract_tar
from dlx.data.cache import file_fingerprint
from dlx.data.download import download_files
from dlx.data.text import TextDataset

ARCHIVE = "aclImdb_v1.tar.gz"
ARCHIVE_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"
MIRRORS = ("https://ai.stanford.edu/~amaas/data/sentiment/",)
SPLITS = ("train", "test")
POLARITIES = ("neg", "pos")  # label 0, label 1


def _review_id(name: str) -> tuple[int, str]:
    head = name.split("_", 1)[0]
    return (int(head), name) if head.isdigit() else (1 << 62, name)


def read_tree_split(folder: Path) -> tuple[list[str], np.ndarray]:
    """aclImdb/<split>/ -> (texts, labels): neg then pos, each by review id."""
    texts: list[str] = []
    labels: list[int] = []
    for label, polarity in enumerate(POLARITIES):
        sub = folder / polarity
        try:
            names = sorted((n for n in os.listdir(sub) if n.endswith(".txt")), key=_review_id)
        except OSError as err:
            raise DataError(f"cannot list IMDB reviews in {sub} ({err})") from None
        for name in names:
            try:
                texts.append((sub / name).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as err:
                raise DataError(f"cannot read IMDB review {sub / name} ({err})") from None
        labels += [label] * len(names)
    if not texts:
        raise DataError(f"no reviews in {folder}/{{neg,pos}}/*.txt")
    return texts, np.asarray(labels, dtype=np.int64)


def read_jsonl(path: Path) -> tuple[list[str], np.ndarray]:
    """A jsonl.gz of {"text", "label"} records -> (texts, labels), checked line by line."""
    texts: list[str] = []
    labels: list[int] = []
    hint = "delete it and fetch it again"
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{path} line {lineno} is not JSON ({err.msg})") from None
                text = record.get("text") if isinstance(record, dict) else None
                if not isinstance(text, str):
                    raise DataError(f'{path} line {lineno} has no "text" string')
                label = record.get("label")
                if label not in (0, 1) or isinstance(label, float):
                    raise DataError(f'{path} line {lineno}: "label" must be 0 or 1, not {label!r}')
                texts.append(text)
                labels.append(int(label))
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not a readable gzip file ({err}); {hint}") from None
    if not texts:
        raise DataError(f"{path} holds no reviews")
    return texts, np.asarray(labels, dtype=np.int64)


def _tree_fingerprint(folder: Path) -> list[Any]:
    """Count, total size and newest mtime of each polarity folder: one stat per file."""
    out: list[Any] = []
    for polarity in POLARITIES:
        n = size = newest = 0
        with os.scandir(folder / polarity) as it:
            for entry in it:
                if entry.name.endswith(".txt"):
                    st = entry.stat()
                    n, size, newest = n + 1, size + st.st_size, max(newest, st.st_mtime_ns)
        out.append([polarity, n, size, newest])
    return out


class IMDB(TextDataset):
    name = "imdb"
    mirrors: tuple[str, ...] = MIRRORS
    archive_md5: str = ARCHIVE_MD5

    def __init__(
        self,
        root: str | Path = "data",
        shuffle_seed: int | None = 113,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.shuffle_seed = shuffle_seed

    @property
    def class_names(self) -> tuple[str, ...]:
        return POLARITIES

    def _tree(self) -> Path:
        return self.root / "aclImdb"

    def _jsonl(self, split: str) -> Path:
        return self.root / "imdb" / f"{split}.jsonl.gz"

    def source(self) -> str:
        """'tree' or 'jsonl': the layout found under root (downloading the tree if allowed)."""
        tree = self._tree()
        if all((tree / s / p).is_dir() for s in SPLITS for p in POLARITIES):
            return "tree"
        if all(self._jsonl(s).is_file() for s in SPLITS):
            return "jsonl"
        if self.download:
            if not (self.root / ARCHIVE).is_file():
                download_files({ARCHIVE: self.archive_md5}, self.mirrors, self.root, what="IMDB")
            extract_tar(self.root / ARCHIVE, self.root, "aclImdb")
            return "tree"
        raise DataError(
            f"IMDB not found in {self.root}: expected aclImdb/{{train,test}}/{{neg,pos}}/*.txt "
            "or imdb/{train,test}.jsonl.gz; set dataset.root (or DLX_DATA_DIR), "
            "or allow dataset.download=true"
        )

    def source_settings(self) -> dict[str, Any]:
        self._source = self.source()
        if self._source == "tree":
            prints = {s: _tree_fingerprint(self._tree() / s) for s in SPLITS}
        else:
            prints = {s: file_fingerprint(self._jsonl(s)) for s in SPLITS}
        return {"source": self._source, "files": prints}

    def read_texts(self) -> dict[str, tuple[list[str], np.ndarray]]:
        if self._source == "tree":
            return {s: read_tree_split(self._tree() / s) for s in SPLITS}
        return {s: read_jsonl(self._jsonl(s)) for s in SPLITS}

    def order(self, split: str, n: int) -> np.ndarray | None:
        if self.shuffle_seed is None:
            return None
        # Seeded like keras.datasets.imdb (113); each split has its own stream, so
        # `limit` or a different test size never changes the training order.
        return np.random.RandomState(self.shuffle_seed + (split == "test")).permutation(n)
