"""Users' own labelled text: a CSV file with a text column and a label column.

Labels may be any strings; classes are their sorted distinct values in the training file
(numerically sorted when all are integers), numbered 0..k-1. A separate `test_path` gives
the test split, else `test_size` of the rows is held out (`train_test_split`'s
permutation). Tokenising, numbering, padding and caching are IMDB's (`data/text.py`).
"""

from __future__ import annotations

import csv
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from dlx.core.errors import ConfigError, DataError
from dlx.data.base import check_test_size
from dlx.data.cache import file_fingerprint
from dlx.data.digits import book_split
from dlx.data.text import TextDataset


def read_csv_columns(path: Path, columns: tuple[str, ...]) -> list[list[str]]:
    """The named columns of a CSV file (header row first), one list each."""
    if not path.is_file():
        raise DataError(f"CSV file {path} does not exist; set dataset.path")
    old_limit = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long documents are fine
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DataError(f"CSV file {path} is empty")
            missing = [c for c in columns if c not in header]
            if missing:
                raise DataError(
                    f"CSV file {path} has no column {', '.join(missing)} "
                    f"(its columns: {', '.join(header)}); set dataset.text_column / "
                    "dataset.label_column"
                )
            idx = [header.index(c) for c in columns]
            out: list[list[str]] = [[] for _ in columns]
            for lineno, row in enumerate(reader, 2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"{path} line {lineno} has {len(row)} fields, the header {len(header)}"
                    )
                for col, i in zip(out, idx, strict=True):
                    col.append(row[i])
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read CSV file {path} ({err})") from None
    finally:
        csv.field_size_limit(old_limit)
    if not out[0]:
        raise DataError(f"CSV file {path} has a header but no rows")
    return out


def _sorted_labels(labels: set[str]) -> list[str]:
    try:
        return sorted(labels, key=int)
    except ValueError:
        return sorted(labels)


class TextCSV(TextDataset):
    name = "text_csv"

    def __init__(
        self,
        path: str | Path | None = None,
        text_column: str = "text",
        label_column: str = "label",
        test_path: str | Path | None = None,
        test_size: float = 0.2,
        random_state: int = 2017,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if path is None:
            raise ConfigError("dataset=text_csv needs dataset.path=<file.csv>")
        check_test_size(test_size)
        self.path = Path(path).expanduser()
        self.test_path = Path(test_path).expanduser() if test_path else None
        self.columns = (text_column, label_column)
        self.test_size = test_size
        self.random_state = random_state

    @cached_property
    def _train_columns(self) -> list[list[str]]:
        return read_csv_columns(self.path, self.columns)

    @property
    def class_names(self) -> tuple[str, ...]:
        # Reads the file once (kept for read()): the classes are in the data.
        return tuple(_sorted_labels(set(self._train_columns[1])))

    def source_settings(self) -> dict[str, Any]:
        files = [file_fingerprint(self.path)]
        if self.test_path is not None:
            files.append(file_fingerprint(self.test_path))
        return {
            "files": files,
            "columns": list(self.columns),
            "split": None if self.test_path else [self.test_size, self.random_state],
        }

    def read_texts(self) -> tuple[list[str], np.ndarray, list[str] | None, np.ndarray | None]:
        texts, labels = self._train_columns
        ids = {name: i for i, name in enumerate(self.class_names)}
        y = np.asarray([ids[v] for v in labels], dtype=np.int64)
        if self.test_path is not None:
            test_texts, test_labels = read_csv_columns(self.test_path, self.columns)
            unknown = sorted(set(test_labels) - set(ids))
            if unknown:
                raise DataError(
                    f"{self.test_path} has labels the training file lacks: {', '.join(unknown[:5])}"
                )
            return texts, y, test_texts, np.asarray([ids[v] for v in test_labels], np.int64)
        if not self.test_size:
            return texts, y, None, None
        train_idx, test_idx = book_split(len(texts), self.test_size, self.random_state)
        return (
            [texts[i] for i in train_idx],
            y[train_idx],
            [texts[i] for i in test_idx],
            y[test_idx],
        )
