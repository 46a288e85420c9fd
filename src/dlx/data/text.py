"""Text -> token ids, numbered the way Keras' imdb loader numbers words (no torchtext).

Tokens: lower-case, `<br />` removed, regex words (letters and digits of any script, with
inner apostrophes: "don't" and "café" are one word each).
Ids: 0 = padding, 1 = start of sequence, 2 = out of vocabulary, then words from 3 by falling
frequency in the *training* split (ties broken alphabetically, so the numbering never
depends on file order). `num_words` caps the id range: words whose id would be
>= num_words become 2, so an embedding table of `num_words` rows covers every id.
Sequences are `[1, w1, w2, ...]` cut and padded at the front to `maxlen` (Keras
`pad_sequences` defaults: padding="pre", truncating="pre").
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from itertools import repeat
from typing import Any

import numpy as np
import torch

from dlx.core.data import Data, Spec, Split
from dlx.core.errors import ConfigError
from dlx.data.base import Dataset, sample
from dlx.data.cache import Field, Layout, split_fields

PAD, START, OOV, FIRST_WORD = 0, 1, 2, 3
# Bump when tokenising or numbering changes: it is part of every text cache key.
TOKENIZER_VERSION = 1

# Letters and digits of any script, with inner apostrophes; `_` is not part of a word.
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("<br />", " "))


def build_vocab(docs: Iterable[Sequence[str]], num_words: int) -> tuple[dict[str, int], int]:
    """(word -> id for the num_words - 3 most frequent words, number of distinct words)."""
    counts: Counter[str] = Counter()
    for doc in docs:  # one C-level update per document
        counts.update(doc)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    keep = ranked[: max(num_words - FIRST_WORD, 0)]
    return {w: i + FIRST_WORD for i, (w, _) in enumerate(keep)}, len(counts)


def encode(docs: Sequence[Sequence[str]], vocab: dict[str, int], maxlen: int) -> np.ndarray:
    """Token lists -> int64 [len(docs), maxlen], start id first, cut and padded in front."""
    out = np.zeros((len(docs), maxlen), dtype=np.int64)
    get = vocab.get
    for i, doc in enumerate(docs):
        # Only the last maxlen ids survive 'pre' truncation: look up no more than those.
        ids = list(map(get, doc[-maxlen:], repeat(OOV)))
        if len(doc) < maxlen:
            ids.insert(0, START)
        if ids:
            out[i, maxlen - len(ids) :] = ids
    return out


def vocab_tensor(vocab: dict[str, int]) -> torch.Tensor:
    """The vocabulary as UTF-8 bytes, words in id order joined by newlines (a word never
    holds one), so the cache stays a file of tensors."""
    words = sorted(vocab, key=vocab.__getitem__)
    blob = "\n".join(words).encode()
    return (
        torch.frombuffer(bytearray(blob), dtype=torch.uint8)
        if blob
        else torch.zeros(0, dtype=torch.uint8)
    )


def vocab_from_tensor(t: torch.Tensor) -> dict[str, int]:
    text = t.numpy().tobytes().decode("utf-8", errors="replace")
    return {w: i + FIRST_WORD for i, w in enumerate(text.split("\n") if text else [])}


class TextDataset(Dataset):
    """A labelled text collection turned into padded int64 token ids, cached.

    Subclasses give `read_texts()` and `source_settings()` (what identifies the files);
    the cache key adds every setting that changes the ids. A source with its own
    validation texts (a file of them) gives a "val" split, used instead of `val_split`.
    """

    scale = None  # token ids go into the model as they are

    def __init__(self, num_words: int = 20000, maxlen: int = 80, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if num_words <= FIRST_WORD:
            raise ConfigError(f"dataset.num_words={num_words} must be > {FIRST_WORD}")
        if maxlen < 1:
            raise ConfigError(f"dataset.maxlen={maxlen} must be a positive length")
        self.num_words = int(num_words)
        self.maxlen = int(maxlen)
        self.vocab_note = ""
        self._val: Split | None = None  # the source's own validation split, once read
        self.vocab: dict[str, int] | None = None  # word -> id, once read

    @property
    @abstractmethod
    def class_names(self) -> tuple[str, ...]: ...

    def preprocessing(self) -> dict[str, Any] | None:
        """The tokeniser's version, maxlen and the vocabulary of the training split."""
        if self.vocab is None:
            return None
        return {"kind": "text", "tokenizer": TOKENIZER_VERSION, "maxlen": self.maxlen,
                "num_words": self.num_words, "vocab": dict(self.vocab)}  # fmt: skip

    @property
    def source_spec(self) -> Spec:
        names = self.class_names
        return Spec(
            input_shape=(self.maxlen,),
            num_classes=len(names),
            class_names=names,
            vocab_size=self.num_words,
        )

    @abstractmethod
    def source_settings(self) -> dict[str, Any]:
        """What identifies the source files (fingerprints) and how they are read."""

    @abstractmethod
    def read_texts(self) -> dict[str, tuple[list[str], np.ndarray]]:
        """{"train": (texts, labels)} first, then "val" and "test" where the source has them."""

    def stored_splits(self) -> tuple[str, ...] | None:
        """The splits `read_texts()` gives, where the config tells them before any file is
        read; None: train, and test when the source has one (known once its texts are read)."""
        return None

    def _layout(self) -> Layout:
        """The cache entry: token ids below num_words, class ids, the distinct-word count."""
        ids = Field(torch.int64, (self.maxlen,), self.num_words)
        splits = self.stored_splits()
        fields = split_fields(splits or ("train", "test"), ids, self.source_spec.num_classes)
        fields["distinct_words"] = Field(torch.int64, ())
        fields["vocab"] = Field(torch.uint8, (None,))
        return Layout(fields, optional=() if splits else ("test_x", "test_y"))

    def order(self, split: str, n: int) -> np.ndarray | None:
        """A permutation applied after the cache (None: keep file order)."""
        return None

    def read(self) -> tuple[Split, Split | None]:
        settings = {
            **self.source_settings(),
            "num_words": self.num_words,
            "maxlen": self.maxlen,
            "tokenizer": TOKENIZER_VERSION,
            "vocab": True,  # the entry holds the vocabulary too (dlx predict reads it)
        }

        def build() -> dict[str, torch.Tensor]:
            texts = self.read_texts()
            assert next(iter(texts)) == "train"  # its words make the vocabulary
            out: dict[str, torch.Tensor] = {}
            vocab: dict[str, int] = {}
            for split, (docs, labels) in texts.items():
                tokens = [tokenize(t) for t in docs]
                if split == "train":
                    vocab, distinct = build_vocab(tokens, self.num_words)
                    out["distinct_words"] = torch.tensor(distinct)
                    out["vocab"] = vocab_tensor(vocab)
                out[f"{split}_x"] = torch.from_numpy(encode(tokens, vocab, self.maxlen))
                out[f"{split}_y"] = torch.from_numpy(np.asarray(labels, dtype=np.int64))
                del tokens  # one split's token lists in memory at a time
            return out

        t = self.cached(settings, build, self._layout())
        distinct = int(t["distinct_words"])
        self.vocab = vocab_from_tensor(t["vocab"])
        self.vocab_note = (
            f"{self.num_words:,} ids: {min(distinct, self.num_words - FIRST_WORD):,} most "
            f"frequent of {distinct:,} distinct training words, + pad/start/OOV"
        )
        splits: dict[str, Split] = {}
        for split in ("train", "val", "test"):
            if f"{split}_x" not in t:
                continue
            x, y = t[f"{split}_x"], t[f"{split}_y"]
            perm = self.order(split, len(y))
            if perm is not None:
                idx = torch.from_numpy(perm)
                x, y = x[idx], y[idx]
            splits[split] = Split(x, y)
        self._val = splits.get("val")
        return splits["train"], splits.get("test")

    def load(self) -> Data:
        """The base's splits, with the source's own validation split where it has one
        (`classes` and `limit` apply to it as to the others)."""
        self._val = None
        data = super().load()
        if self._val is None:
            return data
        if data.val is not None:  # subclasses refuse val_split with a val file up front
            raise ConfigError("dataset.val_split and a validation file both give a val split")
        val = self.select(self._val)
        assert val is not None
        return replace(data, val=val if self.limit is None else sample(val, self.limit))
