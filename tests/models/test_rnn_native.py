"""The LSTM's time loop in C (`rnn_native`) against the torch-ops BPTT it stands in for
(itself checked against the cell loop in float64, test_recurrent_bptt.py), its build cache,
and where it refuses to run."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from dlx.core.data import Spec
from dlx.core.errors import ConfigError
from dlx.models import native_build, recurrent, rnn_fused, rnn_native
from dlx.models.recurrent import RecurrentClassifier

from ..conftest import run_dlx
from ..data.formats import write_aclimdb

WHY_NOT = rnn_native.library()[1]
needs_native = pytest.mark.skipif(WHY_NOT is not None, reason=f"no C LSTM here: {WHY_NOT}")
SMALL = Spec((10,), 2, vocab_size=50)
DROPS = {"embedding_dropout": 0.2, "dropout": 0.2, "recurrent_dropout": 0.2}


def inputs(n: int, steps: int, emb: int, hid: int, masked: bool, scale: float = 1.0):
    torch.manual_seed(0)
    cell = nn.LSTMCell(emb, hid)
    x = (scale * torch.randn(n, steps, emb)).requires_grad_()
    mask = (torch.rand(n, hid) > 0.2).float() / 0.8 if masked else None
    return x, [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh], mask


def run(fn, x, weights, mask, grad_out):
    out = fn(x, *weights, mask)
    return out, torch.autograd.grad(out, [x, *weights], grad_out)


@needs_native
@pytest.mark.parametrize("masked", [True, False], ids=["mask", "no-mask"])
@pytest.mark.parametrize(
    "n, steps, emb, hid",
    [(3, 5, 4, 7), (2, 1, 3, 4), (1, 3, 5, 16), (5, 7, 9, 21), (32, 80, 128, 128)],
    ids=["units-not-a-multiple-of-8", "one-step", "one-row", "odd", "book"],
)
def test_outputs_and_gradients_match_the_torch_ops_bptt(n, steps, emb, hid, masked):
    x, weights, mask = inputs(n, steps, emb, hid, masked)
    grad_out = torch.randn(n, hid)
    want, want_grads = run(rnn_fused.lstm_sequence, x, weights, mask, grad_out)
    got, grads = run(rnn_native.lstm_sequence, x, weights, mask, grad_out)
    # measured: <= 2e-7 (outputs) and 1.2e-6 (gradients) at the book's size
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    for name, g, w in zip(["x", "w_ih", "w_hh", "b_ih", "b_hh"], grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5, msg=f"d{name}")


@needs_native
def test_one_thread_and_two_give_the_same_sequence():
    x, weights, mask = inputs(3, 6, 4, 9, True)
    grad_out = torch.randn(3, 9)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run(rnn_native.lstm_sequence, x, weights, mask, grad_out)
        torch.set_num_threads(2)  # the rows split 1 + 2: each block its own BLAS calls
        two = run(rnn_native.lstm_sequence, x, weights, mask, grad_out)
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(two[0], one[0], rtol=0, atol=1e-6)
    for a, b in zip(two[1], one[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@needs_native
def test_saturated_gates_stay_finite_and_nan_stays_nan():
    """The C exp clamps its argument: gates of +-1e4 saturate as torch's do, and a NaN input
    (a diverged run) comes out NaN, so the trainer's non-finite check still fires."""
    x, weights, mask = inputs(2, 4, 3, 8, True, scale=1e4)
    with torch.no_grad():
        got = rnn_native.lstm_sequence(x, *weights, mask)
        want = rnn_fused.lstm_sequence(x, *weights, mask)
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
        x[1, 2, 0] = float("nan")
        out = rnn_native.lstm_sequence(x, *weights, mask)
    assert torch.isnan(out[1]).all() and torch.isfinite(out[0]).all()


def train(
    impl: str,
    dtype: torch.dtype = torch.float32,
    steps: int = 4,
    drops: dict | None = None,
    front_in_c: bool = True,
    frozen: bool = False,
):
    torch.manual_seed(1)
    model = RecurrentClassifier(SMALL, embed_dim=6, hidden=5, impl=impl, **(drops or DROPS))
    model = model.to(dtype).train()
    if not front_in_c:  # the embedding and its masks in torch ops, the LSTM in C
        model._front_in_c = lambda: False
    model.embedding.weight.requires_grad_(not frozen)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    ids, y = torch.randint(0, 50, (8, 10)), torch.randint(0, 2, (8,)).to(dtype)
    ids[:, :3] = 0  # padding at the front, as the data sets pad
    losses, backward_nodes = [], set()
    for _ in range(steps):  # the masks come from the global RNG, in the same order
        opt.zero_grad()
        logits = model(ids)
        backward_nodes |= graph_nodes(logits.grad_fn)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model.state_dict(), backward_nodes


def graph_nodes(fn) -> set[str]:
    seen, todo = set(), [fn]
    while todo:
        node = todo.pop()
        if node is not None and node.name() not in seen:
            seen.add(node.name())
            todo += [f for f, _ in node.next_functions]
    return seen


@needs_native
def test_auto_trains_with_the_c_loop_as_the_torch_ops_would():
    losses, state, nodes = train("auto")
    want_losses, want_state, want_nodes = train("fused_bptt")
    assert "_EmbeddedLSTMBackward" in nodes and "_EmbeddedLSTMBackward" not in want_nodes
    assert losses == pytest.approx(want_losses, rel=0, abs=1e-6)
    for key, value in state.items():
        torch.testing.assert_close(value, want_state[key], rtol=0, atol=1e-5)


@needs_native
@pytest.mark.parametrize(
    "drops",
    [DROPS, {"embedding_dropout": 0.3, "recurrent_dropout": 0.2},
     {"dropout": 0.3, "recurrent_dropout": 0.2}, {"recurrent_dropout": 0.2}],
    ids=["all", "words", "inputs", "recurrent-only"],
)  # fmt: skip
def test_the_lookup_in_c_trains_as_torch_embedding_does_to_the_bit(drops):
    """The embedding's lookup, its word dropout and the LSTM's input dropout in C: the same
    parameters after Adam steps as nn.Embedding and torch's products, bit for bit (the
    reproduction's seeds keep their numbers); ids repeat (a vocabulary of 50) and pad."""
    losses, state, nodes = train("auto", drops=drops)
    want_losses, want_state, want_nodes = train("auto", drops=drops, front_in_c=False)
    assert "_EmbeddedLSTMBackward" in nodes and "_NativeLSTMBackward" in want_nodes
    assert losses == want_losses
    for key, value in state.items():
        assert torch.equal(value, want_state[key]), key
    assert state["embedding.weight"][0].eq(0).all()  # the padding row gets no gradient


@needs_native
def test_the_lookup_in_c_leaves_a_frozen_embedding_alone():
    _, state, _ = train("auto", frozen=True)
    _, want_state, _ = train("auto", frozen=True, front_in_c=False)
    torch.manual_seed(1)
    first = RecurrentClassifier(SMALL, embed_dim=6, hidden=5, **DROPS).state_dict()
    assert torch.equal(state["embedding.weight"], first["embedding.weight"])
    for key, value in state.items():
        assert torch.equal(value, want_state[key]), key


@needs_native
def test_the_lookup_in_c_on_one_thread_also_trains_as_torch_embedding_does():
    """Each thread owns a block of the table's rows: one thread (one block) sums as two do."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        _, state, _ = train("auto")
        _, want_state, _ = train("auto", front_in_c=False)
    finally:
        torch.set_num_threads(before)
    for key, value in state.items():
        assert torch.equal(value, want_state[key]), key


@needs_native
@pytest.mark.parametrize("bad", [50, -1])
def test_the_lookup_in_c_refuses_an_id_outside_the_table(bad):
    model = RecurrentClassifier(SMALL, embed_dim=6, hidden=5, **DROPS).train()
    ids = torch.randint(0, 50, (4, 10))
    ids[2, 7] = bad
    with pytest.raises(IndexError, match=f"token id {bad} is outside the embedding's 50 rows"):
        model(ids)


def test_auto_falls_back_where_the_c_loop_cannot_run_and_says_why(caplog, monkeypatch):
    monkeypatch.setattr(recurrent, "_said", set())  # what this process has said already
    with caplog.at_level(logging.INFO, logger="dlx"):
        losses, _, nodes = train("auto", torch.float64)  # the C loop is float32
    assert "_LSTMBackward" in nodes and "_NativeLSTMBackward" not in nodes
    assert all(torch.isfinite(torch.tensor(losses)))
    said = [r.getMessage() for r in caplog.records if "model.impl=auto" in r.getMessage()]
    assert len(said) == 1 and "float64" in said[0]  # once a process, not once a batch


def test_native_is_refused_for_the_gru_in_one_line():
    with pytest.raises(ConfigError, match="LSTM only"):
        RecurrentClassifier(SMALL, cell="gru", impl="native", **DROPS)


def test_no_compiler_is_one_line_and_auto_still_trains(tmp_path, cli_env):
    env = {**cli_env, "CC": str(tmp_path / "no-such-cc")}
    root = write_aclimdb(tmp_path / "data")
    args = ["train", "experiment=book/6_14_lstm_imdb", "debug=smoke", f"dataset.root={root}",
            "dataset.download=false", "model.embed_dim=8", "model.hidden=8"]  # fmt: skip
    refused = run_dlx(*args, "model.impl=native", env=env)
    assert refused.returncode != 0
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.impl=native cannot run here" in lines[0], refused.stderr
    assert "no C compiler" in lines[0] and "Traceback" not in refused.stderr
    auto = run_dlx(*args, env=env)
    assert auto.returncode == 0, auto.stderr[-2000:]
    assert "model.impl=auto runs fused_bptt" in auto.stdout + auto.stderr
    assert not list(Path(cli_env["DLX_CACHE_DIR"]).glob("native/*.so"))


@needs_native
def test_the_build_is_cached_and_leaves_no_temp_files(tmp_path, monkeypatch):
    monkeypatch.setenv("DLX_CACHE_DIR", str(tmp_path))
    first = native_build._built()
    mtime = first.stat().st_mtime_ns
    assert native_build._built() == first and first.stat().st_mtime_ns == mtime  # not rebuilt
    assert sorted(p.name for p in first.parent.iterdir()) == [first.name]
    assert first.stat().st_mode & 0o022 == 0 and first.parent.stat().st_mode & 0o077 == 0


@needs_native
def test_a_build_killed_midway_leaves_nothing_behind_the_next_build(tmp_path, monkeypatch):
    """SIGKILL skips a temp folder's clean-up; the next build removes such leftovers, but not
    a fresh one (another process may be building into it)."""
    monkeypatch.setenv("DLX_CACHE_DIR", str(tmp_path))
    folder = native_build.cache_dir()
    folder.mkdir(mode=0o700)
    old, fresh = folder / "build-killed", folder / "build-running"
    for d in (old, fresh):
        d.mkdir()
        (d / "rnn-x.so").write_bytes(b"half")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    built = native_build._built()
    assert sorted(p.name for p in folder.iterdir()) == sorted([built.name, fresh.name])


@needs_native
@pytest.mark.parametrize("writable", ["library", "folder"])
def test_a_library_others_can_write_is_not_loaded(tmp_path, monkeypatch, writable):
    """The cached kernel is code: one that someone else could have put there (planted with a
    constructor that would run at load) is refused, not run."""
    monkeypatch.setenv("DLX_CACHE_DIR", str(tmp_path))
    marker = tmp_path / "payload-ran"
    payload = tmp_path / "payload.c"
    payload.write_text(
        "#include <stdio.h>\n"
        "__attribute__((constructor)) static void run(void) {"
        f' FILE *f = fopen("{marker}", "w"); if (f) fclose(f); }}\n'
    )
    target = native_build.library_path(shutil.which("cc") or "cc")
    target.parent.mkdir(parents=True, mode=0o700)
    subprocess.run(["cc", "-shared", "-fPIC", str(payload), "-o", str(target)], check=True)
    os.chmod(target if writable == "library" else target.parent, 0o777)
    with pytest.raises(RuntimeError, match="writable by other users"):
        native_build._built()
    assert not marker.exists()
