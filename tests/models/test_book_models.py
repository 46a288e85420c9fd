"""The chapter's torch models: Keras-parity parameter counts, shapes, a step that learns."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlx.core import tasks
from dlx.core.data import Spec
from dlx.core.errors import ConfigError
from dlx.models.autoencoder import Autoencoder
from dlx.models.cnn import CNN
from dlx.models.mlp import MLP
from dlx.models.perceptron import Perceptron
from dlx.models.rbm import RBMClassifier
from dlx.models.recurrent import RecurrentClassifier

MNIST = Spec((1, 28, 28), 10)
CIFAR = Spec((3, 32, 32), 10)
IMDB = Spec((80,), 2, vocab_size=20000)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "build, expected",
    [
        (lambda: MLP(MNIST), 623_290),  # 6-9
        (lambda: Autoencoder(MNIST), 226_720),  # 6-10
        (
            lambda: CNN(CIFAR, filters=[10, 10], conv_dropout=0, hidden=[512], dropout=0),
            1_010_352,
        ),  # 6-12
        (lambda: CNN(MNIST), 93_858),  # 6-13
    ],
    ids=["6-9 mlp", "6-10 autoencoder", "6-12 cnn cifar10", "6-13 cnn mnist"],
)
def test_parameter_counts_equal_the_books(build, expected):
    assert count(build()) == expected


def one_step_lowers_loss(model: nn.Module, task: tasks.Task, x, y, lr=0.05, opt=torch.optim.SGD):
    torch.manual_seed(0)
    optim = opt(model.parameters(), lr=lr)
    model.train()

    def loss_now() -> float:
        torch.manual_seed(1)  # the same dropout masks / noise / Gibbs samples each time
        inp, target = task.prepare(x, y)
        return task.loss(model(inp), target)

    before = loss_now()
    before.backward()
    optim.step()
    optim.zero_grad()
    with torch.no_grad():
        after = loss_now()
    return before.item(), after.item()


@pytest.mark.parametrize(
    "name, build, task, x, y",
    [
        (
            "mlp",
            lambda: MLP(MNIST, hidden=[32]),
            tasks.Classification(),
            torch.rand(16, 1, 28, 28),
            torch.randint(0, 10, (16,)),
        ),
        (
            "cnn",
            lambda: CNN(MNIST, conv_dropout=0, dropout=0),
            tasks.Classification(),
            torch.rand(16, 1, 28, 28),
            torch.randint(0, 10, (16,)),
        ),
        (
            "autoencoder",
            lambda: Autoencoder(MNIST, code=16),
            tasks.Reconstruction(),
            torch.rand(16, 1, 28, 28),
            torch.zeros(16, dtype=torch.long),
        ),
        (
            "denoise",
            lambda: Autoencoder(MNIST, code=16),
            tasks.Denoising(0.5),
            torch.rand(16, 1, 28, 28),
            torch.zeros(16, dtype=torch.long),
        ),
        (
            "lstm",
            lambda: RecurrentClassifier(IMDB, embed_dim=8, hidden=8),
            tasks.Binary(),
            torch.randint(0, 20000, (16, 80)),
            torch.randint(0, 2, (16,)),
        ),
        (
            "gru-loop",
            lambda: RecurrentClassifier(
                IMDB, cell="gru", embed_dim=8, hidden=8, recurrent_dropout=0.2
            ),
            tasks.Binary(),
            torch.randint(0, 20000, (16, 80)),
            torch.randint(0, 2, (16,)),
        ),
        (
            "perceptron",
            lambda: Perceptron(Spec((2,), 2), init="torch"),
            tasks.PerceptronRule(),
            torch.randn(16, 2),
            torch.randint(0, 2, (16,)),
        ),
    ],
)
def test_one_training_step_lowers_the_loss(name, build, task, x, y):
    torch.manual_seed(0)
    before, after = one_step_lowers_loss(build(), task, x, y)
    assert after < before, f"{name}: {before} -> {after}"


def test_perceptron_loss_gives_rosenblatts_update():
    model = Perceptron(Spec((2,), 2))  # zero weights: every sample counts as wrong
    x, y = torch.tensor([[1.0, 2.0]]), torch.tensor([1])
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    tasks.PerceptronRule().loss(model(x), y).backward()
    opt.step()
    assert torch.allclose(model.linear.weight, torch.tensor([[0.5, 1.0]]))  # w += lr*s*x
    assert torch.allclose(model.linear.bias, torch.tensor([0.5]))


def test_rbm_gap_gradient_is_the_cd_update():
    torch.manual_seed(0)
    rbm = RBMClassifier(Spec((6,), 2), n_components=4, persistent=False).rbm
    v = torch.bernoulli(torch.full((5, 6), 0.5))
    torch.manual_seed(3)
    rbm.gap(v).backward()
    torch.manual_seed(3)
    v_neg = rbm.negative_sample(v)
    with torch.no_grad():
        pos = rbm.hidden_probs(v).t() @ v / 5
        neg = rbm.hidden_probs(v_neg).t() @ v_neg / 5
    assert torch.allclose(-rbm.weight.grad, pos - neg, atol=1e-6)


def test_rbm_learns_to_reconstruct_digits():
    from dlx.data.digits import Digits
    from dlx.engine.loop import Trainer

    data = Digits(limit=600).load()
    torch.manual_seed(0)
    model = RBMClassifier(data.spec, n_components=64)
    v = data.test.x.float().reshape(len(data.test), -1) * data.scale

    def reconstruction_error() -> float:
        with torch.no_grad():
            return ((model.rbm.visible_probs(model.rbm.hidden_probs(v)) - v) ** 2).mean().item()

    before = reconstruction_error()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    Trainer(max_epochs=5, batch_size=10, progress=False).fit(model, opt, tasks.RBMTask(), data)
    assert reconstruction_error() < 0.5 * before
    # Then the book's second step: a logistic regression on the frozen RBM's features.
    model.rbm.requires_grad_(False)
    head = torch.optim.Adam(model.head.parameters(), lr=0.03)
    metrics = Trainer(max_epochs=15, batch_size=64, progress=False).fit(
        model, head, tasks.RBMTask(), data
    )
    assert metrics["test/acc"] > 0.5  # chance is 0.1; the real data run reaches .93


def test_keras1_embedding_dropout_drops_whole_words():
    model = RecurrentClassifier(IMDB, embed_dim=4, hidden=4, embedding_dropout=0.5).train()
    ids = torch.tensor([[5, 7, 5, 7, 5, 9]])
    torch.manual_seed(0)
    emb = model.embed(ids)[0]
    zero = (emb == 0).all(dim=1)
    # every occurrence of a word is dropped or kept together
    assert zero[0] == zero[2] == zero[4] and zero[1] == zero[3]


def test_recurrent_dropout_uses_the_cell_loop_only_when_asked():
    assert isinstance(RecurrentClassifier(IMDB).rnn, nn.LSTM)
    assert isinstance(RecurrentClassifier(IMDB, recurrent_dropout=0.2).rnn, nn.LSTMCell)
    model = RecurrentClassifier(IMDB, embed_dim=8, hidden=8, recurrent_dropout=0.2).eval()
    assert model(torch.randint(0, 20000, (3, 80))).shape == (3,)


def test_channels_last_gives_the_same_outputs():
    torch.manual_seed(0)
    a = CNN(CIFAR, conv_dropout=0, dropout=0).eval()
    b = CNN(CIFAR, conv_dropout=0, dropout=0, channels_last=True).eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(4, 3, 32, 32)
    assert torch.allclose(a(x), b(x), atol=1e-5)


@pytest.mark.parametrize(
    "build, words",
    [
        (lambda: CNN(IMDB), "needs images"),
        (lambda: RecurrentClassifier(CIFAR), "reads token ids"),
        (lambda: Perceptron(MNIST), "two classes"),
        (lambda: Autoencoder(IMDB), "not token ids"),
        (lambda: CNN(Spec((1, 4, 4), 2)), "too small"),
    ],
)
def test_models_refuse_data_they_cannot_take(build, words):
    with pytest.raises(ConfigError, match=words):
        build()


def test_freeze_really_freezes():
    from dlx.engine.transfer import freeze

    model = CNN(MNIST)
    freeze(model, ["features"])
    frozen = {k: v.clone() for k, v in model.features.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = nn.functional.cross_entropy(model(torch.rand(8, 1, 28, 28)), torch.randint(0, 10, (8,)))
    loss.backward()
    opt.step()
    assert all(torch.equal(v, model.features.state_dict()[k]) for k, v in frozen.items())
    assert all(p.grad is None for p in model.features.parameters())


def test_dbn_pretrains_one_layer_at_a_time_then_fine_tunes_all():
    from dlx.models.rbm import DBN

    x, y = torch.rand(8, 1, 8, 8), torch.randint(0, 10, (8,))
    spec = Spec((1, 8, 8), 10)
    model = DBN(spec, layers=[16, 12], train_layer=1).train()
    tasks.RBMTask().loss(model(x), y).backward()
    assert model.rbms[0].weight.grad is None  # below the layer being trained: untouched
    assert model.rbms[1].weight.grad is not None and model.head.weight.grad is not None
    tuned = DBN(spec, layers=[16, 12], train_layer=None).train()
    logits, gap = tuned(x)
    assert float(gap) == 0.0
    tasks.RBMTask().loss((logits, gap), y).backward()
    assert all(r.weight.grad is not None for r in tuned.rbms)  # backprop through the stack


def test_recurrent_keras_init():
    model = RecurrentClassifier(IMDB, embed_dim=8, hidden=6)
    assert model.embedding.weight.abs().max() <= 0.05
    assert torch.count_nonzero(model.embedding.weight[0]) == 0  # padding row
    w_hh = model.rnn.weight_hh_l0  # [4*6, 6]: orthogonal columns
    assert torch.allclose(w_hh.t() @ w_hh, torch.eye(6), atol=1e-5)
    assert torch.equal(model.rnn.bias_ih_l0[6:12], torch.ones(6))  # forget gate
    assert torch.count_nonzero(model.rnn.bias_hh_l0) == 0
    loop = RecurrentClassifier(IMDB, embed_dim=8, hidden=6, recurrent_dropout=0.2)
    assert torch.equal(loop.rnn.bias_ih[6:12], torch.ones(6))
