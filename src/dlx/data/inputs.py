"""New inputs for a trained model: image files and texts made into stored samples exactly
as the run's data set made its own, from the preprocessing saved with the run
(dlx/core/preprocessing.py), so no data set file or config is needed.

- `find_files("x")`: a file, every file under a folder (sorted, hidden ones left out), or
  the matches of a glob (`imgs/*.png`, `**` recursive).
- images: decoded by the data set's own decoder (`images.decode`: any mode to the run's
  channels, resized to its size), then put on the stored pixel range (0..max_value).
- texts: a string, a file of one text a line (`.txt` or any other name), or a column of a
  CSV / TSV / JSON Lines file (`text_formats`); tokenised, numbered with the run's
  vocabulary and cut or padded to its `maxlen` (`text.encode`).
"""

from __future__ import annotations

import glob
import gzip
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlx.core.errors import ConfigError, DataError
from dlx.data.image_folder import EXTENSIONS as IMAGE_SUFFIXES
from dlx.data.images import decode
from dlx.data.text import TOKENIZER_VERSION, encode, tokenize
from dlx.data.text_formats import GZIP_MAGIC, SUFFIXES, read_table

TABLE_SUFFIXES = tuple(s for s in SUFFIXES if s not in (".txt",))  # .txt: one text a line


def find_files(pattern: str) -> list[Path]:
    """The files `input=` names: a file, a folder's files, or a glob's matches."""
    path = Path(pattern).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise DataError(f"input={pattern}: the folder holds no files")
        return files
    if not glob.has_magic(pattern):
        raise DataError(f"input={pattern}: no such file or folder")
    files = sorted(
        Path(p) for p in glob.glob(os.path.expanduser(pattern), recursive=True) if Path(p).is_file()
    )
    if not files:
        raise DataError(f"input={pattern} matches no file")
    return files


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def is_image(path: Path) -> bool:
    return _suffix(path) in IMAGE_SUFFIXES


def image_files(files: list[Path], pattern: str) -> list[Path]:
    """The images among `files` (a folder may hold other files; one named file is tried)."""
    if len(files) == 1:
        return files
    images = [f for f in files if is_image(f)]
    if not images:
        raise DataError(
            f"input={pattern} holds no images ({', '.join(IMAGE_SUFFIXES)}); this run "
            "classifies images"
        )
    return images


def read_images(files: list[Path], prep: dict[str, Any]) -> torch.Tensor:
    """Image files -> uint8 [N, channels, height, width] on the data set's pixel range."""
    channels, height, width = prep["channels"], prep["height"], prep["width"]
    out = np.empty((len(files), channels, height, width), dtype=np.uint8)
    for i, path in enumerate(files):
        if not is_image(path) and _suffix(path) in (*TABLE_SUFFIXES, ".txt"):
            raise DataError(
                f"{path} is a text file, but this run classifies images; give image files "
                f"({', '.join(IMAGE_SUFFIXES)})"
            )
        out[i] = decode(path, channels, height, width)
    if prep["max_value"] != 255:  # e.g. the 8x8 digits, stored as 0..16
        out = np.rint(out.astype(np.float32) * (prep["max_value"] / 255.0)).astype(np.uint8)
    return torch.from_numpy(out)


def read_texts(
    files: list[Path], column: Any = None, header: bool = True
) -> tuple[list[str], list[str]]:
    """(texts, where each came from: `file:line`) from text files."""
    texts: list[str] = []
    names: list[str] = []
    for path in files:
        if is_image(path):
            raise DataError(
                f"{path} is an image, but this run classifies text; give a file of one text "
                "a line, a CSV/TSV/JSONL file (column=...), or text='\"...\"'"
            )
        if _suffix(path) in TABLE_SUFFIXES:
            fmt = SUFFIXES[_suffix(path)]
            named = fmt == "jsonl" or header
            col = column if column is not None else ("text" if named else 0)
            table = read_table(path, fmt, header, col, None, "input")
            texts += table.texts
            names += [f"{path}:{n}" for n in table.lines]
        else:
            for lineno, line in _lines(path):
                texts.append(line)
                names.append(f"{path}:{lineno}")
    if not texts:
        raise DataError(f"{', '.join(map(str, files[:3]))}: no text to classify (empty)")
    return texts, names


def _lines(path: Path) -> list[tuple[int, str]]:
    """The non-blank lines of a UTF-8 text file (gzip'd or not), with their numbers."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == GZIP_MAGIC:
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8-sig")
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"cannot read {path} ({err})") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text ({err.reason}); save it as UTF-8") from None
    return [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def encode_texts(texts: list[str], prep: dict[str, Any]) -> torch.Tensor:
    """Texts -> int64 [N, maxlen] token ids, as the run's training texts were encoded."""
    if prep["tokenizer"] != TOKENIZER_VERSION:
        raise ConfigError(
            f"the run was tokenised by tokenizer version {prep['tokenizer']}, this dlx "
            f"tokenises with version {TOKENIZER_VERSION}: retrain it with this dlx"
        )
    tokens = [tokenize(t) for t in texts]
    return torch.from_numpy(encode(tokens, prep["vocab"], prep["maxlen"]))
