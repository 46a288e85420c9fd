"""Users' own labelled text (`dataset=text`): CSV, TSV or JSON Lines files, plain or gzip.

One text and one label a row. How a file is read (`data/text_formats.py`):
- format from `format` (csv | tsv | jsonl) or the file's name: `.csv`; `.tsv`, `.tab` or
  `.txt` (tab-separated); `.jsonl`, `.ndjson` or `.json` (one object a line); each may end
  in `.gz`. Gzip is recognised by the file's first bytes and read as a stream.
- CSV and TSV files have a header row unless `header=false`: one rule for both, never
  guessed from the data (a guess would change with the file's first line). A headerless
  file such as `sentence<TAB>label` needs `header=false`; the error for a missing column
  says so.
- Columns: `text_column` / `label_column` name a header's column or a JSON key, or give a
  0-based index; left null they are `text` / `label`, or 0 / 1 without a header.

Labels may be any strings (or JSON integers); classes are their sorted distinct values in
the training file (numerically sorted when all are integers), numbered 0..k-1. `val_path`
gives the validation split (instead of `val_split`); `test_path` the test split, else
`test_size` of the training rows is held out (`train_test_split`'s permutation);
`test_size: null` keeps them all for training (no test split).
Tokenising, numbering, padding and caching are IMDB's (`data/text.py`).
"""

from __future__ import annotations

from collections import Counter
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from dlx.core.errors import ConfigError, DataError
from dlx.data.base import check_test_size
from dlx.data.cache import file_fingerprint
from dlx.data.digits import book_split
from dlx.data.text import TextDataset
from dlx.data.text_formats import READER_VERSION, Column, Table, file_format, read_table


def sorted_labels(labels: set[str]) -> list[str]:
    """Class order: numeric when every label is an integer, else alphabetical."""
    try:
        return sorted(labels, key=int)
    except ValueError:
        return sorted(labels)


class TextFiles(TextDataset):
    name = "text"

    def __init__(
        self,
        path: str | Path | None = None,
        format: str | None = None,
        header: bool = True,
        text_column: Column | None = None,
        label_column: Column | None = None,
        val_path: str | Path | None = None,
        test_path: str | Path | None = None,
        test_size: float | None = 0.2,
        random_state: int = 2017,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if path is None:
            raise ConfigError("dataset=text needs dataset.path=<file.csv|.tsv|.jsonl[.gz]>")
        if not isinstance(header, bool):
            raise ConfigError(f"dataset.header={header} must be true or false")
        if test_path is None and test_size is not None:  # held out of path's rows
            check_test_size(test_size)
        if val_path and self.val_split:
            raise ConfigError(
                f"dataset.val_path and dataset.val_split={self.val_split} both give a "
                "validation split; keep one (dataset.val_split=0 to use the file)"
            )
        self.format = format
        self.header = header
        self.files = {"path": Path(path).expanduser()}
        for option, value in (("val_path", val_path), ("test_path", test_path)):
            if value:
                self.files[option] = Path(value).expanduser()
        self.formats = {k: file_format(p, format) for k, p in self.files.items()}
        self.text_column = text_column
        self.label_column = label_column
        self.test_size = test_size
        self.random_state = random_state

    def _columns(self, fmt: str) -> tuple[Column, Column]:
        """The configured columns, or the defaults: names with a header or in JSON, else 0, 1."""
        named = fmt == "jsonl" or self.header
        text = self.text_column if self.text_column is not None else ("text" if named else 0)
        label = self.label_column if self.label_column is not None else ("label" if named else 1)
        return text, label

    def _read(self, option: str) -> Table:
        fmt = self.formats[option]
        return read_table(self.files[option], fmt, self.header, *self._columns(fmt), option)

    @cached_property
    def _train(self) -> Table:
        table = self._read("path")
        counts = Counter(table.labels)
        if len(counts) < 2:
            label, n = counts.most_common(1)[0]
            raise DataError(
                f"{table.path} has one class only ({label!r}, all {n} rows); a classifier "
                "needs two or more: check dataset.label_column"
            )
        return table

    @property
    def class_names(self) -> tuple[str, ...]:
        # Reads the training file once (kept for read()): the classes are in the data.
        return tuple(sorted_labels(set(self._train.labels)))

    def stored_splits(self) -> tuple[str, ...]:
        val = ("val",) if "val_path" in self.files else ()
        test = ("test",) if "test_path" in self.files or self.test_size else ()
        return ("train", *val, *test)

    def source_settings(self) -> dict[str, Any]:
        files = {}
        for option, path in self.files.items():
            if not path.is_file():
                raise DataError(f"text file {path} does not exist; set dataset.{option}")
            fmt = self.formats[option]
            files[option] = [fmt, [str(c) for c in self._columns(fmt)], file_fingerprint(path)]
        return {
            "reader": READER_VERSION,
            "files": files,
            "header": self.header,
            "split": None if "test_path" in self.files else [self.test_size, self.random_state],
        }

    def _class_ids(self, table: Table, ids: dict[str, int]) -> np.ndarray:
        for label, lineno in zip(table.labels, table.lines, strict=True):
            if label not in ids:
                known = ", ".join(map(repr, list(ids)[:10])) + (", ..." if len(ids) > 10 else "")
                raise DataError(
                    f"{table.path} line {lineno}: label {label!r} is not in the training file "
                    f"{self.files['path']} (its classes: {known}); a model cannot learn it"
                )
        return np.asarray([ids[label] for label in table.labels], dtype=np.int64)

    def read_texts(self) -> dict[str, tuple[list[str], np.ndarray]]:
        train = self._train
        ids = {name: i for i, name in enumerate(self.class_names)}
        texts, y = train.texts, self._class_ids(train, ids)
        out = {"train": (texts, y)}
        if "val_path" in self.files:
            val = self._read("val_path")
            out["val"] = (val.texts, self._class_ids(val, ids))
        if "test_path" in self.files:
            test = self._read("test_path")
            out["test"] = (test.texts, self._class_ids(test, ids))
        elif self.test_size:
            train_idx, test_idx = book_split(len(texts), self.test_size, self.random_state)
            out["train"] = ([texts[i] for i in train_idx], y[train_idx])
            out["test"] = ([texts[i] for i in test_idx], y[test_idx])
        return out
