from __future__ import annotations

import gzip
import hashlib
import json

import pytest
import torch

from dlx.core.errors import DataError
from dlx.data.imdb import IMDB
from dlx.data.text import OOV, START
from tests.data.formats import (
    imdb_records,
    make_tar_gz,
    serve,
    write_aclimdb,
    write_imdb_jsonl,
    write_jsonl_gz,
)


def load(root, **kw):
    kw.setdefault("download", False)
    kw.setdefault("shuffle_seed", None)
    return IMDB(root=root, **kw).load()


def test_tree_and_jsonl_give_the_same_ids(tmp_path):
    a = load(write_aclimdb(tmp_path / "tree"), maxlen=6)
    b = load(write_imdb_jsonl(tmp_path / "jsonl"), maxlen=6)
    for split in ("train", "test"):
        sa, sb = getattr(a, split), getattr(b, split)
        assert torch.equal(sa.x, sb.x) and torch.equal(sa.y, sb.y)
    assert a.train.y.tolist() == [0, 0, 1, 1]


def test_ids_follow_keras_numbering(tmp_path):
    data = load(write_imdb_jsonl(tmp_path), maxlen=8)
    assert data.train.x.dtype == torch.int64 and data.scale is None
    assert data.spec.vocab_size == 20000 and data.spec.input_shape == (8,)
    # training counts: awful 4, great 4, film 3, boring 2 ... -> awful 3, great 4, film 5
    # the first negative (id 2): "boring and awful" -> start, boring, and, awful, front-padded
    row = data.train.x[0].tolist()
    assert row[:4] == [0, 0, 0, 0] and row[4] == START and row[7] == 3
    # "unseenword" occurs only in test: the vocabulary is built from train alone
    test_row = data.test.x[1].tolist()  # test neg id 3: "awful awful unseenword"
    assert test_row[-3:] == [3, 3, OOV]


def test_num_words_caps_ids_and_maxlen_cuts_the_front(tmp_path):
    data = load(write_imdb_jsonl(tmp_path), num_words=5, maxlen=2)
    both = torch.cat([data.train.x, data.test.x])
    assert int(both.max()) == 4 and data.spec.vocab_size == 5  # 'great' (id 4) kept
    # a long review keeps its last two tokens and loses the start id
    assert START not in data.train.x[1].tolist()


def test_cache_is_keyed_by_every_setting(tmp_path):
    root = write_imdb_jsonl(tmp_path / "root")
    cache = tmp_path / "cache"
    for kw in ({"maxlen": 5}, {"maxlen": 6}, {"maxlen": 5, "num_words": 10}, {"maxlen": 5}):
        load(root, cache_dir=cache, **kw)
    assert len(list(cache.glob("imdb-*.pt"))) == 3
    ds = IMDB(root=root, download=False, maxlen=5, cache_dir=cache)
    ds.load()
    assert ds.cache_hit


def test_shuffle_seed_mixes_classes_for_val_split(tmp_path):
    reviews = {
        s: {p: [(i, 1 if p == "neg" else 9, f"{p} review {i}") for i in range(20)]
            for p in ("neg", "pos")}
        for s in ("train", "test")
    }  # fmt: skip
    root = write_imdb_jsonl(tmp_path, reviews)
    fixed = load(root, val_split=0.25)
    assert fixed.val.y.tolist() == [1] * 10  # file order: the last quarter is all positive
    mixed = IMDB(root=root, download=False, val_split=0.25).load()  # Keras' seed 113
    assert (
        set(mixed.val.y.tolist()) == {0, 1}
        and int(mixed.train.y.sum()) + int(mixed.val.y.sum()) == 20
    )


def test_classes_option_on_text(tmp_path):
    data = load(write_imdb_jsonl(tmp_path), classes=[1])
    assert data.spec.class_names == ("pos",) and data.train.y.tolist() == [0, 0]


def test_missing_data_names_both_layouts(tmp_path):
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert "aclImdb" in str(err.value) and "jsonl.gz" in str(err.value)


@pytest.mark.parametrize(
    "line, words",
    [
        ({"label": 1}, 'line 3 has no "text"'),
        ({"text": None, "label": 1}, 'line 3 has no "text"'),
        ({"text": "x", "label": 5}, '"label" must be 0 or 1'),
        ("not json", "line 3 is not JSON"),
    ],
)
def test_bad_jsonl_lines_give_one_line_and_no_cache(tmp_path, line, words):
    root = write_imdb_jsonl(tmp_path / "root")
    records = imdb_records("train")
    path = root / "imdb" / "train.jsonl.gz"
    with gzip.open(path, "wt") as f:
        for r in records[:2]:
            f.write(json.dumps(r) + "\n")
        f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    with pytest.raises(DataError) as err:
        load(root, cache_dir=tmp_path / "cache")
    assert words in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_truncated_gzip(tmp_path):
    root = write_imdb_jsonl(tmp_path)
    path = root / "imdb" / "test.jsonl.gz"
    write_jsonl_gz(path, imdb_records("test") * 50)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match=r"test\.jsonl\.gz is not a readable gzip file"):
        load(root)


def test_download_extracts_the_official_tree(tmp_path, monkeypatch):
    built = write_aclimdb(tmp_path / "built")
    site = tmp_path / "site"
    site.mkdir()
    archive = make_tar_gz(site / "aclImdb_v1.tar.gz", built / "aclImdb", "aclImdb")
    with serve(site) as url:
        monkeypatch.setattr(IMDB, "mirrors", (url,))
        monkeypatch.setattr(IMDB, "archive_md5", hashlib.md5(archive.read_bytes()).hexdigest())
        data = IMDB(root=tmp_path / "data", download=True, shuffle_seed=None, maxlen=6).load()
    assert (tmp_path / "data" / "aclImdb" / "test" / "pos" / "5_8.txt").is_file()
    assert torch.equal(data.train.x, load(built, maxlen=6).train.x)
