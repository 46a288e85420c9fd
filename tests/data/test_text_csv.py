"""dataset=text_csv: the former name of dataset=text (tests/data/test_text_files.py), kept
for configs saved by earlier runs; its options mean what they meant."""

from __future__ import annotations

import csv

import pytest
import torch

from dlx.core.errors import ConfigError, DataError
from dlx.data.text_csv import TextCSV


def write_csv(path, rows, header=("review", "sentiment")):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


ROWS = [("good fun, really good", "positive"), ("bad, so bad", "negative"),
        ("good good", "positive"), ("dull and bad", "negative"), ("meh", "neutral")]  # fmt: skip


def test_string_labels_and_a_test_file(tmp_path):
    train = write_csv(tmp_path / "train.csv", ROWS)
    test = write_csv(tmp_path / "test.csv", [("bad", "negative"), ("good", "positive")])
    ds = TextCSV(path=train, test_path=test, text_column="review", label_column="sentiment",
                 maxlen=4, cache_dir=tmp_path / "cache")  # fmt: skip
    assert ds.spec.class_names == ("negative", "neutral", "positive")
    data = ds.load()
    assert data.train.y.tolist() == [2, 0, 2, 0, 1] and data.test.y.tolist() == [0, 2]
    assert data.train.x.shape == (5, 4) and data.train.x.dtype == torch.int64
    # 'good' (4x) gets id 3, 'bad' (3x) id 4, like IMDB's numbering
    assert data.test.x.tolist() == [[0, 0, 1, 4], [0, 0, 1, 3]]
    assert data.spec.vocab_size == 20000 and data.scale is None


def test_split_without_test_file_and_integer_labels(tmp_path):
    rows = [(f"text {i}", str(i % 3 * 5)) for i in range(10)]
    data = TextCSV(path=write_csv(tmp_path / "a.csv", rows), text_column="review",
                   label_column="sentiment", test_size=0.3).load()  # fmt: skip
    assert data.spec.class_names == ("0", "5", "10")  # numeric order
    assert (len(data.train), len(data.test)) == (7, 3)


@pytest.mark.parametrize(
    "setup, words",
    [
        (lambda p: write_csv(p, ROWS, header=("text", "label")), "has no column 'review'"),
        (lambda p: p.write_text(""), "is empty"),
        (lambda p: write_csv(p, []), "has a header but no rows"),
        (lambda p: None, "does not exist"),
    ],
)
def test_bad_csv_files(tmp_path, setup, words):
    path = tmp_path / "x.csv"
    setup(path)
    with pytest.raises(DataError) as err:
        TextCSV(path=path, text_column="review", label_column="sentiment").load()
    assert words in str(err.value) and "\n" not in str(err.value)


def test_test_labels_unknown_to_training_are_refused(tmp_path):
    train = write_csv(tmp_path / "train.csv", ROWS)
    test = write_csv(tmp_path / "test.csv", [("x", "sarcastic")])
    with pytest.raises(DataError, match=r"test\.csv line 2: label 'sarcastic' is not in the tra"):
        TextCSV(path=train, test_path=test, text_column="review", label_column="sentiment").load()


def test_path_is_required():
    with pytest.raises(ConfigError, match=r"dataset\.path"):
        TextCSV()
