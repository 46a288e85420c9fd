"""The hand-written whole-sequence LSTM/GRU (`rnn_fused`) against the nn.LSTMCell/GRUCell loop
it replaces: same outputs, same gradients, same training run from the same seed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlx.core.data import Spec
from dlx.core.errors import ConfigError
from dlx.models.recurrent import RecurrentClassifier, fused_kernel_last
from dlx.models.rnn_fused import gru_sequence, lstm_sequence

CELLS = {"lstm": (nn.LSTMCell, lstm_sequence), "gru": (nn.GRUCell, gru_sequence)}
SMALL = Spec((10,), 2, vocab_size=50)


def cell_loop(cell: nn.Module, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The reference: RecurrentClassifier._loop's recurrence, the cell seeing h * mask."""
    h = x.new_zeros(x.shape[0], cell.hidden_size)
    c = torch.zeros_like(h)
    for t in range(x.shape[1]):
        h_in = h * mask if mask is not None else h
        if isinstance(cell, nn.LSTMCell):
            h, c = cell(x[:, t], (h_in, c))
        else:
            h = cell(x[:, t], h_in)
    return h


def setup(kind: str, n: int, steps: int, emb: int, hid: int, masked: bool, scale: float | None):
    torch.manual_seed(0)
    cell = CELLS[kind][0](emb, hid).double()
    if scale is not None:  # weights larger than torch's default (short sequences only)
        with torch.no_grad():
            for p in cell.parameters():
                p.uniform_(-scale, scale)
    x = torch.randn(n, steps, emb, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(n, hid, dtype=torch.float64) > 0.2).double() / 0.8 if masked else None
    return cell, x, mask


def params(cell: nn.Module) -> list[torch.Tensor]:
    return [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]


@pytest.mark.parametrize("masked", [True, False], ids=["mask", "no-mask"])
@pytest.mark.parametrize(
    "n, steps, emb, hid, scale",
    [(3, 5, 4, 7, 0.5), (2, 1, 3, 4, 0.5), (32, 80, 128, 128, None)],
    ids=["odd", "one-step", "book"],
)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_outputs_and_gradients_match_the_cell_loop(kind, n, steps, emb, hid, scale, masked):
    cell, x, mask = setup(kind, n, steps, emb, hid, masked, scale)
    grad_out = torch.randn(n, hid, dtype=torch.float64)
    ref = cell_loop(cell, x, mask)
    ref_grads = torch.autograd.grad(ref, [x, *params(cell)], grad_out)
    out = CELLS[kind][1](x, *params(cell), mask)
    grads = torch.autograd.grad(out, [x, *params(cell)], grad_out)
    # measured here: <= 2e-14 at the book's size, <= 1e-15 for the small ones
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-11)
    for name, got, want in zip(
        ["x", "w_ih", "w_hh", "b_ih", "b_hh"], grads, ref_grads, strict=True
    ):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-11, msg=f"d{name}")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gradcheck(kind):
    cell, x, mask = setup(kind, 2, 4, 3, 3, True, 0.5)
    inputs = (x, *(p.detach().requires_grad_() for p in params(cell)), mask)
    assert torch.autograd.gradcheck(CELLS[kind][1], inputs)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_evaluation_kernel_matches_the_cell_loop(kind):
    cell, x, _ = setup(kind, 3, 6, 4, 5, False, 0.5)
    with torch.no_grad():
        got = fused_kernel_last(kind, x, tuple(params(cell)))
        torch.testing.assert_close(got, cell_loop(cell, x, None), rtol=0, atol=1e-12)


def train(kind: str, impl: str, dtype: torch.dtype, steps: int = 4) -> tuple[list[float], dict]:
    torch.manual_seed(1)
    drops = {"embedding_dropout": 0.2, "dropout": 0.2, "recurrent_dropout": 0.2}
    model = RecurrentClassifier(SMALL, cell=kind, embed_dim=6, hidden=5, impl=impl, **drops)
    model = model.to(dtype).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    ids, y = torch.randint(0, 50, (8, 10)), torch.randint(0, 2, (8,)).to(dtype)
    losses = []
    for _ in range(steps):  # the masks come from the global RNG, in the same order in both
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(model(ids), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model.state_dict()


@pytest.mark.parametrize(
    "kind, dtype, tol",
    [("lstm", torch.float64, 1e-12), ("gru", torch.float64, 1e-12), ("lstm", torch.float32, 1e-5)],
)
def test_training_from_one_seed_matches_the_loop(kind, dtype, tol):
    loop_losses, loop_state = train(kind, "loop", dtype)
    losses, state = train(kind, "fused_bptt", dtype)
    assert losses == pytest.approx(loop_losses, rel=0, abs=tol)
    for key, value in state.items():
        torch.testing.assert_close(value, loop_state[key], rtol=0, atol=tol * 10)


def test_state_dict_keys_are_the_cells():
    """Checkpoints from the cell loop (and before it) load unchanged."""
    loop = RecurrentClassifier(SMALL, embed_dim=6, hidden=5, recurrent_dropout=0.2, impl="loop")
    fused = RecurrentClassifier(SMALL, embed_dim=6, hidden=5, recurrent_dropout=0.2)
    assert list(fused.state_dict()) == [
        "embedding.weight",
        "rnn.weight_ih",
        "rnn.weight_hh",
        "rnn.bias_ih",
        "rnn.bias_hh",
        "head.weight",
        "head.bias",
    ]
    fused.load_state_dict(loop.state_dict())  # strict
    ids = torch.randint(0, 50, (4, 10))
    torch.testing.assert_close(fused.eval()(ids), loop.eval()(ids), rtol=0, atol=1e-6)


def test_autocast_runs_the_sequence_in_float32():
    cell, x, mask = setup("lstm", 3, 5, 4, 7, True, 0.5)
    cell, x, mask = cell.float(), x.detach().float().requires_grad_(), mask.float()
    want = lstm_sequence(x, *params(cell), mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = lstm_sequence(x.bfloat16(), *params(cell), mask)
        got.sum().backward()
    assert got.dtype == torch.float32 and x.grad.dtype == torch.float32
    assert cell.weight_hh.grad.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0, atol=1e-2)  # x itself was rounded to bf16


def test_unknown_impl_is_refused():
    with pytest.raises(ConfigError, match=r"model\.impl"):
        RecurrentClassifier(SMALL, recurrent_dropout=0.2, impl="cudnn")
