from __future__ import annotations

import pytest
import torch

from dlx.core.data import Spec
from dlx.core.errors import ConfigError
from dlx.models.embedding_bag import EmbeddingBagClassifier

TEXT = Spec(input_shape=(6,), num_classes=2, vocab_size=50)


def test_mean_of_word_embeddings_ignores_padding():
    torch.manual_seed(0)
    model = EmbeddingBagClassifier(TEXT, dim=8)
    padded = torch.tensor([[0, 0, 0, 1, 7, 9]])
    short = torch.tensor([[1, 7, 9]])
    assert torch.allclose(model(padded), model(short), atol=1e-6)
    manual = model.embedding.weight[[1, 7, 9]].mean(0)
    assert torch.allclose(model.embedding(padded)[0], manual, atol=1e-6)
    assert model(padded).shape == (1, 2)


def test_parameter_count_follows_the_spec():
    model = EmbeddingBagClassifier(Spec((80,), 2, vocab_size=20000), dim=64)
    assert sum(p.numel() for p in model.parameters()) == 20000 * 64 + 64 * 2 + 2


def test_refuses_non_text_data():
    with pytest.raises(ConfigError, match="needs token ids"):
        EmbeddingBagClassifier(Spec((1, 28, 28), 10))


def test_learns_which_words_mean_what():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (256,), generator=g)
    # class 0 reviews use words 3..9, class 1 words 10..16, plus shared noise words 17..30
    signal = torch.randint(3, 10, (256, 4), generator=g) + 7 * y[:, None]
    noise = torch.randint(17, 31, (256, 2), generator=g)
    x = torch.cat([torch.zeros(256, 2, dtype=torch.long), signal, noise], dim=1)
    model = EmbeddingBagClassifier(Spec((8,), 2, vocab_size=31), dim=8)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert (model(x).argmax(1) == y).float().mean() > 0.97
