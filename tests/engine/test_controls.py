"""Schedulers, early stopping, gradient clipping, accumulation, the NaN guard, best.pt."""

from __future__ import annotations

import functools

import pytest
import torch

from dlx.core.data import Data, Split
from dlx.core.errors import ConfigError
from dlx.core.tasks import Classification
from dlx.engine.loop import Trainer
from dlx.engine.parts.early_stopping import EarlyStopping
from dlx.engine.parts.nan_guard import Diverged
from dlx.engine.schedule import Schedule
from dlx.models.mlp import MLP
from tests.engine.test_trainer import blobs


def build(data: Data, opt: str = "adam", lr: float = 0.01, seed: int = 0):
    torch.manual_seed(seed)
    model = MLP(data.spec, hidden=[16], init="torch")
    cls = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[opt]
    return model, cls(model.parameters(), lr=lr)


def with_val(data: Data) -> Data:
    cut = len(data.train) * 3 // 4
    tr = data.train
    return Data(data.spec, Split(tr.x[:cut], tr.y[:cut]), Split(tr.x[cut:], tr.y[cut:]), data.test)


def test_step_scheduler_decays_lr_per_epoch():
    data = blobs()
    model, opt = build(data)
    sched = Schedule(functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5))
    trainer = Trainer(max_epochs=3, progress=False)
    trainer.fit(model, opt, Classification(), data, schedule=sched)
    assert [r["lr"] for r in trainer.state.rows] == pytest.approx([0.01, 0.005, 0.0025])


def test_onecycle_gets_total_steps_and_steps_per_batch():
    data = blobs(n=320)  # 256 train -> 8 batches of 32
    model, opt = build(data)
    factory = functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.1, total_steps=None)
    trainer = Trainer(max_epochs=2, batch_size=32, progress=False)
    trainer.fit(model, opt, Classification(), data, schedule=Schedule(factory, "step"))
    lrs = [r["lr"] for r in trainer.state.rows]
    assert lrs[0] != pytest.approx(0.1 / 25)  # it moved within the first epoch
    assert lrs[-1] < lrs[0]  # annealed by the end; 16 steps == total_steps, no error


def test_plateau_scheduler_watches_a_metric():
    data = with_val(blobs())
    model, opt = build(data, lr=1e-4)
    # threshold=1: only a 100% drop of the loss would count as progress, so the lr is cut
    factory = functools.partial(
        torch.optim.lr_scheduler.ReduceLROnPlateau, patience=0, factor=0.5, threshold=1.0
    )
    trainer = Trainer(max_epochs=4, progress=False)
    trainer.fit(model, opt, Classification(), data, schedule=Schedule(factory, monitor="val/loss"))
    assert [r["lr"] for r in trainer.state.rows] == pytest.approx([1e-4, 5e-5, 2.5e-5, 1.25e-5])


def test_early_stopping_stops_and_restores_best_weights(tmp_path):
    data = with_val(blobs())
    model, opt = build(data, lr=1e-9)  # flat metric: no improvement after epoch 1
    stopper = EarlyStopping(monitor="val/loss", patience=2, min_delta=0.1)
    trainer = Trainer(max_epochs=20, progress=False, run_dir=tmp_path, callbacks=[stopper])
    metrics = trainer.fit(model, opt, Classification(), data)
    assert metrics["epochs"] == 4 and metrics["stopped_epoch"] == 4
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == 1
    assert all(torch.equal(best["model"][k], v) for k, v in model.state_dict().items())


def test_best_checkpoint_follows_the_monitor(tmp_path):
    data = with_val(blobs())
    model, opt = build(data)
    trainer = Trainer(max_epochs=4, progress=False, run_dir=tmp_path, monitor="val/loss")
    metrics = trainer.fit(model, opt, Classification(), data)
    losses = [r["val/loss"] for r in trainer.state.rows]
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == losses.index(min(losses)) + 1 == metrics["best_epoch"]


def test_gradient_clipping_bounds_each_update():
    data = blobs()
    model, opt = build(data, opt="sgd", lr=1.0)
    before = [p.detach().clone() for p in model.parameters()]
    Trainer(
        max_epochs=1, batch_size=32, limit_train_batches=1, progress=False, gradient_clip_val=1e-3
    ).fit(model, opt, Classification(), data)
    step = torch.cat([(p - b).flatten() for p, b in zip(model.parameters(), before, strict=True)])
    assert 0 < step.norm() <= 1e-3 * 1.0001


def test_accumulating_two_half_batches_equals_one_full_batch():
    data = blobs()
    m1, o1 = build(data, opt="sgd", lr=0.1)
    m2, o2 = build(data, opt="sgd", lr=0.1)
    Trainer(max_epochs=2, batch_size=32, progress=False).fit(m1, o1, Classification(), data)
    Trainer(max_epochs=2, batch_size=16, accumulate_grad_batches=2, progress=False).fit(
        m2, o2, Classification(), data
    )
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-5)


def test_nan_guard_names_epoch_and_batch_and_keeps_last_good_checkpoint(tmp_path):
    data = blobs()
    model, opt = build(data, opt="sgd", lr=0.01)
    Trainer(max_epochs=1, progress=False, run_dir=tmp_path).fit(model, opt, Classification(), data)
    good = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    poisoned = Data(data.spec, Split(data.train.x.clone(), data.train.y), test=data.test)
    poisoned.train.x[:] = float("nan")
    model2, opt2 = build(data, opt="sgd", lr=0.01)
    trainer = Trainer(max_epochs=2, progress=False, run_dir=tmp_path, checkpoint_every_n_steps=1)
    with pytest.raises(Diverged, match=r"loss became nan at epoch 1, batch 1/15.*last check"):
        trainer.fit(model2, opt2, Classification(), poisoned)
    after = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.equal(after["model"][k], v) for k, v in good["model"].items())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"monitor": "val/acc"}, "trainer.monitor=val/acc is not a metric"),
        (
            {"callbacks": [EarlyStopping(monitor="val/loss")]},
            "callbacks.early_stopping.monitor=val/loss",
        ),
        ({"monitor_mode": "up"}, "must be min or max"),
        ({"gradient_clip_val": 0}, "gradient_clip_val"),
    ],
)
def test_conflicting_or_bad_controls_are_refused(kwargs, message):
    data = blobs()  # no validation split
    model, opt = build(data)
    with pytest.raises(ConfigError, match=message):
        Trainer(max_epochs=1, progress=False, **kwargs).fit(model, opt, Classification(), data)


def test_checkpoint_holds_everything_for_exact_resume(tmp_path):
    data = blobs()
    model, opt = build(data)
    Trainer(max_epochs=1, progress=False, run_dir=tmp_path).fit(model, opt, Classification(), data)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert {
        "model",
        "optimizer",
        "scaler",
        "state",
        "batches",
        "parts",
        "rng",
        "config",
        "dlx_version",
        "checksum",
    } <= set(ckpt)
    assert {"python", "numpy", "torch"} <= set(ckpt["rng"])
    assert {"epoch", "batch", "step", "seen", "sums", "rows"} <= set(ckpt["state"])
    assert {"order", "epoch_start"} <= set(ckpt["batches"])
    assert "Checkpoint" in ckpt["parts"]  # the best value so far


def test_first_signal_asks_to_stop_second_aborts():
    import os
    import signal

    from dlx.engine.signals import StopRequest

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when run in the background
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested and stop.name == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
