"""Readers for labelled text files: CSV, TSV and JSON Lines, each plain or gzip-compressed.

- Format: `format` when given (csv | tsv | jsonl), else the file's name without `.gz`:
  `.csv` -> csv; `.tsv`, `.tab`, `.txt` -> tsv; `.jsonl`, `.ndjson`, `.json` -> jsonl
  (one JSON object per line). Compression from the file's first bytes: a gzip file is read
  as a stream, whatever its name.
- CSV: RFC 4180 quoting (texts may hold commas, quotes and newlines inside quotes).
  TSV: no quoting at all (as GLUE and most corpora write it): a quote is just a character,
  and a text may not hold a tab or a newline.
- Header: CSV and TSV files have a header row unless `header=False`; with one, a column is
  named (`review`) or indexed (`0`); without one, indexed only. JSON Lines columns are keys.
- Blank lines are skipped; labels are stripped of surrounding spaces (`pos ` is `pos`).
Every problem is a one-line DataError naming the file, the line and what is wrong.
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dlx.core.errors import ConfigError, DataError

FORMATS = ("csv", "tsv", "jsonl")
SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "tsv", ".jsonl": "jsonl",
            ".ndjson": "jsonl", ".json": "jsonl"}  # fmt: skip
GZIP_MAGIC = b"\x1f\x8b"
# Bump when what a file reads as changes (blank lines, stripping): part of the cache key.
READER_VERSION = 1

Column = str | int


@dataclass
class Table:
    """The text and label of each row of one file, and the line each row starts on."""

    path: Path
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)


def file_format(path: Path, fmt: str | None) -> str:
    """csv | tsv | jsonl: `fmt` when given, else from the name (`.gz` aside)."""
    if fmt is not None:
        if str(fmt).lower() not in FORMATS:
            raise ConfigError(f"dataset.format={fmt} must be one of {', '.join(FORMATS)} (or null)")
        return str(fmt).lower()
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in SUFFIXES:
        return SUFFIXES[suffixes[-1]]
    raise ConfigError(
        f"cannot tell the format of {path} from its name; name it .csv, .tsv or .jsonl "
        f"(optionally .gz), or set dataset.format={'|'.join(FORMATS)}"
    )


def read_table(
    path: Path,
    fmt: str,
    header: bool,
    text_column: Column,
    label_column: Column | None,
    option: str,
) -> Table:
    """Read `path` (named by dataset.`option`) as `fmt`: one text and one label a row
    (label_column None: texts only, to predict on; labels are then "")."""
    if not path.is_file():
        raise DataError(f"text file {path} does not exist; set dataset.{option}")
    table = Table(path)
    old_limit = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long documents are fine
    try:
        with _open(path) as f:
            if fmt == "jsonl":
                label_key = None if label_column is None else _key(label_column, "label_column")
                rows = _jsonl_rows(f, path, _key(text_column, "text_column"), label_key)
            else:
                rows = _delimited_rows(f, path, fmt, header, (text_column, label_column))
            for lineno, text, label, names in rows:
                _add(table, lineno, text, label, names)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataError(f"{path} is not a readable gzip file ({err})") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text ({err.reason}); save it as UTF-8") from None
    except OSError as err:
        raise DataError(f"cannot read {path} ({err})") from None
    finally:
        csv.field_size_limit(old_limit)
    if not table.texts:
        what = "has a header but no rows" if fmt != "jsonl" and header else "is empty"
        raise DataError(
            f"{path} {what}; give a file of {'' if label_column is None else 'labelled '}texts"
        )
    return table


def _open(path: Path) -> IO[str]:
    with open(path, "rb") as f:
        gz = f.read(2) == GZIP_MAGIC
    if not gz and path.suffix.lower() == ".gz":
        raise DataError(f"{path} is named .gz but is not gzip-compressed; rename or compress it")
    # newline="": the csv module sees line ends itself (newlines inside quoted CSV fields).
    if gz:
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _add(table: Table, lineno: int, text: Any, label: Any, names: tuple[str, str | None]) -> None:
    where = f"{table.path} line {lineno}"
    if not isinstance(text, str):
        raise DataError(f"{where}: the text ({names[0]}) is {_json_kind(text)}, not a string")
    if names[1] is None:  # texts only
        label = "-"
    if isinstance(label, bool) or not isinstance(label, str | int):
        if label is not None:
            kind = _json_kind(label)
            raise DataError(f"{where}: the label ({names[1]}) is {kind}, not a string or integer")
        label = ""
    label = str(label).strip()
    if not text.strip():
        raise DataError(f"{where}: the text ({names[0]}) is empty; fill it or delete the line")
    if not label:
        raise DataError(f"{where}: the label ({names[1]}) is empty; fill it or delete the line")
    table.texts.append(text)
    table.labels.append(label)
    table.lines.append(lineno)


# -- CSV and TSV ------------------------------------------------------------------------------


def _delimited_rows(
    f: IO[str], path: Path, fmt: str, header: bool, columns: tuple[Column, Column | None]
) -> Iterator[tuple[int, str, str | None, tuple[str, str | None]]]:
    if fmt == "csv":
        reader = csv.reader(f)
    else:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
    records = _records(reader, path)
    first = next(records, None)
    if first is None:
        raise DataError(f"{path} is empty; give a file of labelled texts")
    first_line, first_row = first
    width = len(first_row)
    names = [n.strip() for n in first_row] if header else None
    options = ("text_column", "label_column")
    where = f"{path} line {first_line}"
    idx = [
        None if c is None else _index(c, o, names, first_row, where, fmt)
        for c, o in zip(columns, options, strict=True)
    ]
    if idx[0] == idx[1]:
        raise ConfigError(
            f"dataset.text_column and dataset.label_column both name column {idx[0]} of "
            f"{path}; the label needs its own column"
        )
    text_name, label_name = (
        None if i is None else repr(names[i]) if names else f"column {i}" for i in idx
    )
    rows = records if header else _chain(first, records)
    hint = "quote texts that hold commas" if fmt == "csv" else "a text may not hold a tab"
    for lineno, row in rows:
        if len(row) != width:
            raise DataError(
                f"{path} line {lineno} has {len(row)} fields, not {width} like line "
                f"{first_line} ({hint})"
            )
        label = None if idx[1] is None else row[idx[1]]
        yield lineno, row[idx[0]], label, (text_name, label_name)  # type: ignore[misc]


def _records(reader: Any, path: Path) -> Iterator[tuple[int, list[str]]]:
    """(the line a record starts on, its fields), blank lines skipped."""
    end = 0
    try:
        for row in reader:
            start, end = end + 1, reader.line_num
            if any(cell.strip() for cell in row):
                yield start, row
    except csv.Error as err:
        raise DataError(f"{path} line {reader.line_num}: {err}") from None


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _index(
    col: Column, option: str, names: list[str] | None, first: list[str], where: str, fmt: str
) -> int:
    """Which field `col` (the value of dataset.`option`) is; `where` names the first line."""
    if isinstance(col, bool) or not isinstance(col, str | int):
        raise ConfigError(f"dataset.{option}={col} must be a column name or index")
    if isinstance(col, str) and names is None and col.strip().isdigit():
        col = int(col)
    if isinstance(col, int):
        if 0 <= col < len(first):
            return col
        other = "csv" if fmt == "tsv" else "tsv"
        hint = f"; or is it {other.upper()}? set dataset.format={other}" if len(first) == 1 else ""
        raise DataError(
            f"{where} has {len(first)} field(s) ({_show(first)}), no "
            f"column {col}; set dataset.{option}=<0..{len(first) - 1}>{hint}"
        )
    if names is None:
        raise ConfigError(
            f"dataset.{option}={col} names a column, but with dataset.header=false columns "
            f"are indices: {where} has {_show(first)}"
        )
    if col in names:
        return names.index(col)
    raise DataError(
        f"{where} (the header) has no column {col!r} (its columns: {_show(names)}); set "
        f"dataset.{option}=<name or index>, or dataset.header=false if that line is data"
    )


def _show(row: list[str], width: int = 24) -> str:
    cells = [f"{i}: {c[:width]!r}" + ("..." if len(c) > width else "") for i, c in enumerate(row)]
    return ", ".join(cells[:8]) + (", ..." if len(cells) > 8 else "")


# -- JSON Lines -------------------------------------------------------------------------------


def _key(col: Column, option: str) -> str:
    if not isinstance(col, str):
        raise ConfigError(
            f"dataset.{option}={col}: JSON Lines columns are keys; name it (e.g. "
            f"dataset.{option}={'text' if option == 'text_column' else 'label'})"
        )
    return col


def _jsonl_rows(
    f: IO[str], path: Path, text_key: str, label_key: str | None
) -> Iterator[tuple[int, Any, Any, tuple[str, str | None]]]:
    names = (repr(text_key), None if label_key is None else repr(label_key))
    for lineno, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.rstrip("\r\n"))  # columns counted on the line alone
        except json.JSONDecodeError as err:
            array = " (a JSON array? give one object a line)" if line.lstrip()[:1] == "[" else ""
            raise DataError(
                f"{path} line {lineno} is not JSON ({err.msg}, column {err.colno}){array}; "
                "JSON Lines holds one object a line"
            ) from None
        if not isinstance(record, dict):
            raise DataError(
                f"{path} line {lineno} is {_json_kind(record)}, not an object; JSON Lines "
                f'holds one {{"{text_key}": ..., "{label_key}": ...}} object a line'
            )
        for key, option in ((text_key, "text_column"), (label_key, "label_column")):
            if key is not None and key not in record:
                keys = ", ".join(map(repr, list(record)[:10])) or "none"
                raise DataError(
                    f"{path} line {lineno} has no key {key!r} (its keys: {keys}); "
                    f"set dataset.{option}=<key>"
                )
        yield lineno, record[text_key], record.get(label_key or ""), names


def _json_kind(value: Any) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}  # fmt: skip
    return kinds.get(type(value), type(value).__name__)
