"""What a trained model takes as input, as plain values saved with the run.

`describe(data)` is stored in every checkpoint (its "data" entry), in a scikit-learn run's
model.json and in an export's metadata, so `dlx predict` rebuilds the preprocessing of
training from it alone, without the data set's files or its config:

    {"input_shape": [1, 8, 8], "num_classes": 10, "class_names": ["0", ...],
     "vocab_size": None, "scale": 0.0625, "preprocessing": {...} or None}

`preprocessing` is the data set's own (`Dataset.preprocessing()`), by kind:
- image: {"kind": "image", "channels": 1 | 3, "height", "width", "max_value"}: a file is
  decoded to `channels` and resized to height x width as the data set decoded its own
  (`dlx.data.images.decode`), its 0..255 pixels are put on the stored 0..max_value range
  (the 8x8 digits: 0..16), then `scale` makes the model's input (`to_input`).
- text: {"kind": "text", "tokenizer": version, "maxlen", "num_words", "vocab": {word: id}}:
  `dlx.data.text`'s tokeniser, numbering and front padding.
- None: inputs no file format gives (feature vectors: toy2d, digits_nudged).

Values read from files are data: `problem()` checks every one before use.
"""

from __future__ import annotations

from typing import Any

from dlx.core.data import Data, Spec

KINDS = ("image", "text")


def describe(data: Data) -> dict[str, Any]:
    """A Data's spec, scale and preprocessing as plain values."""
    spec = data.spec
    return {
        "input_shape": [int(d) for d in spec.input_shape],
        "num_classes": int(spec.num_classes),
        "class_names": [str(n) for n in spec.class_names],
        "vocab_size": None if spec.vocab_size is None else int(spec.vocab_size),
        "scale": None if data.scale is None else float(data.scale),
        "preprocessing": data.preprocessing,
    }


def spec_of(description: dict[str, Any]) -> Spec:
    """The Spec a model was built for, from its (checked) description."""
    return Spec(
        input_shape=tuple(description["input_shape"]),
        num_classes=description["num_classes"],
        class_names=tuple(description["class_names"]),
        vocab_size=description["vocab_size"],
    )


def _int(value: Any, low: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def problem(description: Any) -> str | None:
    """Why `description` is not one `describe` writes (one clause), or None."""
    if not isinstance(description, dict):
        return f"it is a {type(description).__name__}, not a dict"
    d = description
    shape, names = d.get("input_shape"), d.get("class_names")
    if not isinstance(shape, (list, tuple)) or not shape or not all(_int(s) for s in shape):
        return "input_shape is not a list of positive integers"
    if not _int(d.get("num_classes")):
        return "num_classes is not a positive integer"
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        return "class_names is not a list of strings"
    if names and len(names) != d["num_classes"]:
        return f"{len(names)} class_names for {d['num_classes']} classes"
    if d.get("vocab_size") is not None and not _int(d["vocab_size"]):
        return "vocab_size is not a positive integer"
    scale = d.get("scale")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))):
        return "scale is not a number"
    return _preprocessing_problem(d.get("preprocessing"), d)


def _preprocessing_problem(p: Any, d: dict[str, Any]) -> str | None:
    if p is None:
        return None
    if not isinstance(p, dict) or p.get("kind") not in KINDS:
        return f"preprocessing is not a dict of kind {' or '.join(KINDS)}"
    if p["kind"] == "image":
        if p.get("channels") not in (1, 3) or not all(
            _int(p.get(k)) for k in ("height", "width", "max_value")
        ):
            return "image preprocessing needs channels 1 or 3 and positive height/width/max_value"
        if list(d["input_shape"]) != [p["channels"], p["height"], p["width"]]:
            return "image preprocessing does not match input_shape"
        if p["max_value"] > 255:
            return "image preprocessing max_value is above 255"
        return None
    vocab = p.get("vocab")
    if not all(_int(p.get(k)) for k in ("tokenizer", "maxlen", "num_words")):
        return "text preprocessing needs positive integers tokenizer, maxlen and num_words"
    if not isinstance(vocab, dict) or not all(
        isinstance(w, str) and _int(i, 0) and i < p["num_words"] for w, i in vocab.items()
    ):
        return "text preprocessing vocab is not a dict of words to ids below num_words"
    return None
