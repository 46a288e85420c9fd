from __future__ import annotations

import numpy as np
import pytest

from dlx.data.text import OOV, START, build_vocab, encode, tokenize


def keras_pad_sequences(seqs, maxlen):
    """keras.preprocessing.sequence.pad_sequences with its defaults (pre, pre, value 0)."""
    out = np.zeros((len(seqs), maxlen), dtype=np.int64)
    for i, s in enumerate(seqs):
        s = s[-maxlen:]
        if s:
            out[i, -len(s) :] = s
    return out


def test_tokenize_lowercases_drops_br_and_keeps_inner_apostrophes():
    text = "Don't<br />STOP: it's 'great'... Café_2 x--y <br /><br />END"
    assert tokenize(text) == ["don't", "stop", "it's", "great", "café", "2", "x", "y", "end"]


def test_vocab_by_frequency_ties_alphabetical_and_capped():
    docs = [["b", "a", "c", "c"], ["b", "d", "c"], ["a", "e"]]
    vocab, distinct = build_vocab(docs, num_words=6)
    # c: 3, then a and b: 2 each (tie -> alphabetical), capped at 6 - 3 = 3 words
    assert vocab == {"c": 3, "a": 4, "b": 5} and distinct == 5


@pytest.mark.parametrize("maxlen", [1, 3, 4, 5, 8])
def test_encode_matches_keras_start_char_then_pad_sequences(maxlen):
    vocab = {"the": 3, "film": 4, "good": 5}
    docs = [["the", "film", "was", "good"], [], ["good"], ["the"] * 10]
    # Keras imdb: [start] + ids (unknown -> oov), then pad_sequences(maxlen)
    ref = keras_pad_sequences([[START] + [vocab.get(w, OOV) for w in d] for d in docs], maxlen)
    got = encode(docs, vocab, maxlen)
    assert got.dtype == np.int64 and np.array_equal(got, ref)


def test_ids_stay_below_num_words():
    docs = [[f"w{i}"] * (50 - i) for i in range(40)]
    vocab, _ = build_vocab(docs, num_words=10)
    ids = encode(docs, vocab, maxlen=60)
    assert ids.max() == 9 and set(np.unique(ids)) == set(range(10))
