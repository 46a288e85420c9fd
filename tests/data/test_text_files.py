"""dataset=text: CSV, TSV and JSON Lines files, with or without a header, plain or gzip."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest
import torch

from dlx.core.errors import ConfigError, DataError
from dlx.data.text_files import TextFiles
from tests.runs import train

ROWS = [("a great film, really great", "pos"), ("awful, so boring", "neg"),
        ('he said "wonderful fun', "pos"), ("dull and awful", "neg"),
        ("great fun", "pos"), ("boring boring", "neg")]  # fmt: skip
TEST = [("great", "pos"), ("awful", "neg")]


def write(path: Path, content: str) -> Path:
    """Write `content` as UTF-8, gzip-compressed when the name ends in .gz."""
    data = content.encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def csv_text(rows, header=("review", "sentiment"), label_first=False) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    if header:
        w.writerow(header)
    w.writerows((label, text) if label_first else (text, label) for text, label in rows)
    return out.getvalue()


def tsv_text(rows, header=None) -> str:
    lines = ["\t".join(header)] if header else []
    return "".join(f"{line}\n" for line in lines + [f"{t}\t{lab}" for t, lab in rows])


def jsonl_text(rows) -> str:
    return "".join(json.dumps({"label": lab, "text": t, "id": i}) + "\n"
                   for i, (t, lab) in enumerate(rows))  # fmt: skip


# name: (file suffix, file content from rows, TextFiles options)
FORMATS = {
    "csv": (".csv", csv_text, dict(text_column="review", label_column="sentiment")),
    "csv no header": (".csv", lambda r: csv_text(r, header=None, label_first=True),
                      dict(header=False, text_column=1, label_column=0)),
    "tsv no header": (".tsv", tsv_text, dict(header=False)),
    "tsv header": (".tsv", lambda r: tsv_text(r, ("sentence", "label")),
                   dict(text_column="sentence")),
    "txt no header": (".txt", tsv_text, dict(header=False)),
    "jsonl": (".jsonl", jsonl_text, {}),
    "json lines": (".json", jsonl_text, {}),
    "csv.gz": (".csv.gz", csv_text, dict(text_column=0, label_column=1)),
    "tsv.gz no header": (".tsv.gz", tsv_text, dict(header=False)),
    "jsonl.gz": (".jsonl.gz", jsonl_text, {}),
}  # fmt: skip


def files(tmp_path: Path, kind: str, rows=ROWS, test=TEST, val=None) -> dict:
    """The data set options for train (and test, val) files of this kind."""
    suffix, render, options = FORMATS[kind]
    out = {"path": write(tmp_path / f"train{suffix}", render(rows)), **options}
    if test is not None:
        out["test_path"] = write(tmp_path / f"test{suffix}", render(test))
    if val is not None:
        out["val_path"] = write(tmp_path / f"val{suffix}", render(val))
    return out


@pytest.mark.parametrize("kind", list(FORMATS))
def test_every_format_reads_the_same_rows(tmp_path, kind):
    ds = TextFiles(**files(tmp_path, kind), maxlen=6, cache_dir=tmp_path / "cache")
    assert ds.spec.class_names == ("neg", "pos")
    data = ds.load()
    assert data.train.y.tolist() == [1, 0, 1, 0, 1, 0] and data.test.y.tolist() == [1, 0]
    # boring, great (3x each, alphabetical) 3, 4; awful, fun (2x) 5, 6; then once: a 7 ...
    # he 11, said 13, wonderful 15. In TSV a quote is a character, never quoting.
    assert data.train.x[2].tolist() == [0, 1, 11, 13, 15, 6]  # he said "wonderful fun
    assert data.test.x.tolist() == [[0, 0, 0, 0, 1, 4], [0, 0, 0, 0, 1, 5]]
    assert data.val is None and data.train.x.dtype == torch.int64


def test_val_and_test_files_and_the_cache(tmp_path, caplog):
    opts = files(tmp_path, "tsv no header", val=[("fun fun", "pos"), ("dull", "neg"), ("x", "pos")])
    make = lambda **kw: TextFiles(**opts, maxlen=4, cache_dir=tmp_path / "cache", **kw)  # noqa: E731
    data = make().load()
    assert (len(data.train), len(data.val), len(data.test)) == (6, 3, 2)
    assert data.val.y.tolist() == [1, 0, 1] and data.val.x[0].tolist() == [0, 1, 6, 6]
    again = make()
    with caplog.at_level("WARNING"):
        assert torch.equal(again.load().val.x, data.val.x)
    assert again.cache_hit and not caplog.records
    # classes and limit apply to the val file as to the others
    small = make(classes=[1], limit=1).load()
    assert small.val.y.tolist() == [0] and len(small.train) == 1
    with pytest.raises(ConfigError, match=r"val_path and dataset\.val_split=0\.2"):
        make(val_split=0.2)


def test_test_size_holds_out_train_rows_without_a_test_file(tmp_path):
    opts = files(tmp_path, "jsonl", rows=ROWS * 5, test=None)
    data = TextFiles(**opts, test_size=0.2).load()
    assert (len(data.train), len(data.test)) == (24, 6)
    assert TextFiles(**opts, test_size=None).load().test is None


def test_integer_labels_sort_numerically_json_integers_too(tmp_path):
    labels = [10, 2, 1, 2]
    rows = [(f"text {i}", lab) for i, lab in enumerate(labels)]
    as_json = write(tmp_path / "a.jsonl", jsonl_text(rows))
    as_csv = write(
        tmp_path / "a.csv", csv_text([(t, str(lab)) for t, lab in rows], ("text", "label"))
    )
    for path in (as_json, as_csv):
        ds = TextFiles(path=path, test_size=None)
        assert ds.spec.class_names == ("1", "2", "10")
        assert ds.load().train.y.tolist() == [2, 1, 0, 1]


def test_format_option_beats_the_name_and_strange_names_ask_for_it(tmp_path):
    path = write(tmp_path / "reviews.data", csv_text(ROWS, header=("text", "label")))
    with pytest.raises(ConfigError, match=r"format of .*reviews\.data.*dataset\.format=csv"):
        TextFiles(path=path)
    assert len(TextFiles(path=path, format="csv", test_size=None).load().train) == 6
    txt = write(tmp_path / "a.txt", csv_text(ROWS, header=None))  # a comma-separated .txt
    with pytest.raises(DataError, match=r"is it CSV\? set dataset\.format=csv"):
        TextFiles(path=txt, header=False).load()
    assert len(TextFiles(path=txt, header=False, format="CSV").load().train) == 4  # 0.2 held out
    with pytest.raises(ConfigError, match=r"dataset\.format=xml must be one of csv, tsv, jsonl"):
        TextFiles(path=txt, format="xml")


def test_everything_that_changes_what_is_read_changes_the_cache_key(tmp_path):
    path = write(tmp_path / "a.csv", csv_text(ROWS, header=("a", "b")) + "b,a\n")
    variants = [dict(text_column="a", label_column="b"), dict(text_column=0, label_column=1),
                dict(text_column="b", label_column="a"), dict(header=False),
                dict(header=False, format="tsv", text_column=0, label_column=0)]  # fmt: skip
    keys = {
        json.dumps(TextFiles(path=path, **v).source_settings(), sort_keys=True) for v in variants
    }
    assert len(keys) == len(variants)
    a = TextFiles(path=path, header=False).source_settings()
    write(path, path.read_text() + "more,a\n")
    assert TextFiles(path=path, header=False).source_settings() != a  # the file's fingerprint


# -- bad files: one line naming the file, the line and the problem ------------------------------

BAD = {
    "ragged csv": ("a.csv", "text,label\ngood,pos\nbad,neg,extra\n", {},
                   "a.csv line 3 has 3 fields, not 2 like line 1 (quote texts that hold commas)"),
    "ragged tsv": ("a.tsv", "good\tpos\nbad\n", dict(header=False),
                   "a.tsv line 2 has 1 fields, not 2 like line 1"),
    "ragged multi-line csv": ("a.csv", 'text,label\n"two\nlines",pos\nx\n', {},
                              "a.csv line 4 has 1 fields, not 2 like line 1"),
    "headerless tsv": ("a.tsv", "a great film\tpos\nawful\tneg\n", {},
                       "a.tsv line 1 (the header) has no column 'text' (its columns: "
                       "0: 'a great film', 1: 'pos'); set dataset.text_column=<name or index>, "
                       "or dataset.header=false if that line is data"),
    "missing name": ("a.csv", "review,sentiment\ngood,pos\n",
                     dict(text_column="review", label_column="stars"),
                     "a.csv line 1 (the header) has no column 'stars' (its columns: "
                     "0: 'review', 1: 'sentiment')"),
    "index out of range": ("a.tsv", "\n\ngood\tpos\n", dict(header=False, label_column=2),
                           "a.tsv line 3 has 2 field(s) (0: 'good', 1: 'pos'), no column 2; "
                           "set dataset.label_column=<0..1>"),
    "one class": ("a.csv", "text,label\na,pos\nb,pos\nc,pos\n", {},
                  "a.csv has one class only ('pos', all 3 rows)"),
    "empty text": ("a.csv", 'text,label\ngood,pos\n"  ",neg\n', {},
                   "a.csv line 3: the text ('text') is empty"),
    "empty label": ("a.tsv", "good\tpos\nbad\t \n", dict(header=False),
                    "a.tsv line 2: the label (column 1) is empty"),
    "null label": ("a.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": null}\n', {},
                   "a.jsonl line 2: the label ('label') is empty"),
    "float label": ("a.jsonl", '{"text": "a", "label": 1.5}\n', {},
                    "a.jsonl line 1: the label ('label') is a number, not a string or integer"),
    "text not a string": ("a.jsonl", '{"text": ["a"], "label": 1}\n', {},
                          "a.jsonl line 1: the text ('text') is an array, not a string"),
    "bad json": ("a.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 2\n', {},
                 "a.jsonl line 2 is not JSON (Expecting ',' delimiter"),
    "json array file": ("a.json", '[\n{"text": "a", "label": 1}\n]\n', {},
                        "a.json line 1 is not JSON (Expecting value, column 2) (a JSON array?"),
    "json not an object": ("a.jsonl", '{"text": "a", "label": 1}\n["b", 2]\n', {},
                           "a.jsonl line 2 is an array, not an object"),
    "json missing key": ("a.jsonl", '{"review": "a", "label": 1}\n', {},
                         "a.jsonl line 1 has no key 'text' (its keys: 'review', 'label'); "
                         "set dataset.text_column=<key>"),
    "empty file": ("a.csv", "", {}, "a.csv is empty"),
    "blank file": ("a.jsonl.gz", "\n\n", {}, "a.jsonl.gz is empty"),
    "header only": ("a.tsv", "text\tlabel\n", {}, "a.tsv has a header but no rows"),
    "not utf-8": ("a.csv", b"text,label\ncaf\xe9,pos\n", {}, "a.csv is not UTF-8 text"),
    "named gz, not gzip": ("a.csv.gz", b"text,label\n", {},
                           "a.csv.gz is named .gz but is not gzip"),
    "truncated gzip": ("a.tsv.gz", gzip.compress(b"a\tb\n" * 100)[:-12], dict(header=False),
                       "a.tsv.gz is not a readable gzip file"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_files_are_one_line_naming_file_line_and_problem(tmp_path, case):
    name, content, options, words = BAD[case]
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        write(path, content)
    with pytest.raises(DataError) as err:
        TextFiles(path=path, test_size=None, **options).load()
    message = str(err.value)
    assert words in message and "\n" not in message
    assert message.startswith(str(path))


@pytest.mark.parametrize("split", ["val_path", "test_path"])
def test_labels_the_training_file_lacks_are_refused(tmp_path, split):
    train = write(tmp_path / "train.csv", csv_text(ROWS, header=("text", "label")))
    other = write(tmp_path / "other.jsonl", jsonl_text([("x", "pos"), ("y", "sarcastic")]))
    with pytest.raises(DataError) as err:
        TextFiles(path=train, **{split: other}).load()
    assert str(err.value).startswith(
        f"{other} line 2: label 'sarcastic' is not in the training file {train} "
        "(its classes: 'neg', 'pos')"
    )


@pytest.mark.parametrize("split", ["path", "val_path", "test_path"])
def test_a_missing_file_names_its_option(tmp_path, split):
    train = write(tmp_path / "train.csv", csv_text(ROWS, header=("text", "label")))
    opts = {"path": train, split: tmp_path / "nope.csv"}
    with pytest.raises(DataError, match=rf"nope\.csv does not exist; set dataset\.{split}$"):
        TextFiles(**opts).load()


@pytest.mark.parametrize(
    "options, words",
    [
        (dict(header=False, text_column="review"), "names a column, but with dataset.header=false"),
        (dict(text_column=0, label_column=0), "both name column 0"),
        (dict(path="a.jsonl", text_column=0), "JSON Lines columns are keys"),
        (dict(header="no"), "dataset.header=no must be true or false"),
        (dict(path=None), "needs dataset.path="),
        (dict(test_size=1.0), "test_size=1.0 must be in (0, 1)"),
        (dict(test_size=0), "test_size=0 must be in (0, 1)"),
    ],
)
def test_config_mistakes_are_config_errors(tmp_path, options, words):
    tsv = write(tmp_path / "a.tsv", tsv_text(ROWS))
    jsonl = write(tmp_path / "a.jsonl", jsonl_text(ROWS))
    opts = {"path": tsv, **options}
    opts["path"] = jsonl if opts["path"] == "a.jsonl" else opts["path"]
    with pytest.raises(ConfigError) as err:
        TextFiles(**opts).load()
    assert words in str(err.value) and "\n" not in str(err.value)


# -- training, end to end ----------------------------------------------------------------------

TRAIN_KINDS = ["csv", "csv no header", "tsv no header", "jsonl", "csv.gz", "tsv.gz no header",
               "jsonl.gz"]  # fmt: skip
MODELS = {"embedding_bag": ("model.dim=8",), "lstm": ("model.embed_dim=8", "model.hidden=8")}


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("kind", TRAIN_KINDS)
def test_each_format_trains(tmp_path, kind, model):
    opts = files(tmp_path, kind, val=TEST)
    overrides = [
        f"dataset.{k}={str(v).lower() if v in (True, False) else v}" for k, v in opts.items()
    ]
    _, metrics = train(tmp_path, "dataset=text", *overrides, f"model={model}", *MODELS[model],
                       "dataset.num_words=20", "dataset.maxlen=8", "debug=smoke",
                       "trainer.batch_size=4", "viz.enabled=false")  # fmt: skip
    assert {"train/loss", "val/acc", "test/acc"} <= set(metrics)


def test_text_csv_is_the_old_name_of_text(tmp_path):
    path = write(tmp_path / "a.tsv", tsv_text(ROWS))
    _, metrics = train(tmp_path, "dataset=text_csv", f"dataset.path={path}",
                       "dataset.header=false", "model=embedding_bag", "model.dim=8",
                       "debug=smoke", "viz.enabled=false")  # fmt: skip
    assert "test/acc" in metrics
