from __future__ import annotations

import sys

import pytest
import torch

from dlx.core.data import Data, Spec, Split
from dlx.core.errors import ConfigError
from dlx.core.tasks import Classification
from dlx.engine.loop import Trainer
from dlx.engine.state import RunState
from dlx.models.mlp import MLP


def blobs(n: int = 600, seed: int = 0) -> Data:
    """Three well separated Gaussian blobs in 2-D, as uint8-free float features."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[0.0, 4.0], [4.0, -4.0], [-4.0, -4.0]])
    y = torch.randint(0, 3, (n,), generator=g)
    x = centers[y] + torch.randn(n, 2, generator=g)
    cut = int(n * 0.8)
    return Data(Spec((2,), 3), Split(x[:cut], y[:cut]), test=Split(x[cut:], y[cut:]))


def fit(data: Data | None = None, init_seed: int = 0, **kwargs):
    torch.manual_seed(init_seed)
    data = data or blobs()
    model = MLP(data.spec, hidden=[16], init="torch")
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    trainer = Trainer(**{"max_epochs": 5, "batch_size": 32, "progress": False, **kwargs})
    return trainer, model, trainer.fit(model, opt, Classification(), data)


def test_learns_separable_data(device):
    trainer, _, metrics = fit(accelerator=device)
    assert metrics["test/acc"] >= 0.97
    losses = [row["train/loss"] for row in trainer.state.rows]
    assert losses[-1] < losses[0]
    assert metrics["epochs"] == 5 and len(metrics["epoch_time_s"]) == 5
    assert metrics["num_params"] == 2 * 16 + 16 + 16 * 3 + 3


def test_validation_metrics_each_epoch():
    data = blobs()
    data.val = data.test
    trainer, _, metrics = fit(data)
    assert all("val/acc" in row and "val/loss" in row for row in trainer.state.rows)
    assert metrics["val/acc"] == trainer.state.rows[-1]["val/acc"]


def test_same_seed_same_result(device):
    _, m1, a = fit(init_seed=3, accelerator=device)
    _, m2, b = fit(init_seed=3, accelerator=device)
    assert a["test/loss"] == b["test/loss"]
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters(), strict=True))


def test_data_order_depends_on_trainer_seed():
    _, m1, _ = fit(init_seed=3, seed=1)
    _, m2, _ = fit(init_seed=3, seed=2)
    assert not all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters(), strict=True))


def test_train_loss_is_the_running_mean_over_the_epoch():
    # One batch holding all of train: the logged loss is that batch's loss before the step.
    data = blobs(n=100)
    torch.manual_seed(0)
    fresh = MLP(data.spec, hidden=[16], init="torch")
    expected = torch.nn.functional.cross_entropy(fresh(data.train.x), data.train.y).item()
    trainer, _, _ = fit(data, max_epochs=1, batch_size=1000)
    assert trainer.state.rows[0]["train/loss"] == pytest.approx(expected, rel=1e-5)


def test_limit_train_batches():
    trainer, _, metrics = fit(max_epochs=2, limit_train_batches=3, batch_size=10, run_dir=None)
    ckpt_free = trainer.state.rows
    assert metrics["epochs"] == 2 and len(ckpt_free) == 2
    # 3 batches of 10 samples per epoch: samples/s * time = 30
    row = trainer.state.rows[0]
    assert row["samples_per_s"] * row["epoch_time_s"] == pytest.approx(30)


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_trains_close_to_fp32(precision, device):
    _, _, ref = fit(max_epochs=3, accelerator=device)
    trainer, _, low = fit(max_epochs=3, precision=precision, accelerator=device)
    assert (trainer.scaler is not None) == (precision == "16-mixed")  # fp16 needs loss scaling
    assert low["test/acc"] >= 0.95
    assert abs(low["test/acc"] - ref["test/acc"]) < 0.03


def test_uint8_inputs_sit_on_the_device_and_are_scaled_per_batch(device):
    data = blobs()
    x8 = ((data.train.x + 8) * 10).clamp(0, 255).to(torch.uint8)
    t8 = ((data.test.x + 8) * 10).clamp(0, 255).to(torch.uint8)
    data8 = Data(data.spec, Split(x8, data.train.y), test=Split(t8, data.test.y), scale=1 / 255)
    trainer, model, metrics = fit(data8, max_epochs=10, accelerator=device)
    assert metrics["test/acc"] >= 0.95
    assert data8.train.x.dtype == torch.uint8  # stored data untouched
    # The whole split moved to the device once, as uint8; each batch becomes float there.
    stored = trainer.data.train.x
    assert stored.device.type == device and stored.dtype == torch.uint8
    x, y, _ = next(iter(trainer.batches.epoch(RunState())))
    assert x.device.type == y.device.type == device and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1
    assert next(model.parameters()).device.type == device


def test_checkpoint_written_atomically(tmp_path, device):
    _, model, _ = fit(run_dir=tmp_path, max_epochs=2, accelerator=device)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and set(ckpt) >= {"model", "optimizer", "step", "dlx_version"}
    assert all(torch.equal(ckpt["model"][k], v) for k, v in model.state_dict().items())
    assert not list(tmp_path.rglob("*.tmp"))
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_epochs": 0},
        {"batch_size": -1},
        {"precision": "8"},
        {"accelerator": "tpu"},
        {"limit_train_batches": 0},
    ],
)
def test_bad_trainer_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        Trainer(**kwargs)


def test_cuda_requested_without_cuda_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA device"):
        Trainer(accelerator="cuda")


def _faults_per_step(steps: int = 30) -> float:
    """Minor page faults per training step of a 784-784-10 MLP, batch 500 (MNIST-sized)."""
    import resource

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2000, 1, 28, 28), generator=g, dtype=torch.uint8)
    data = Data(Spec((1, 28, 28), 10), Split(x, torch.randint(0, 10, (2000,), generator=g)))
    data.scale = 1 / 255
    counts = []
    for _ in range(2):  # the first fit grows the heap; the second shows the steady state
        model = MLP(data.spec)
        opt = torch.optim.Adam(model.parameters())
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        Trainer(max_epochs=8, batch_size=500, progress=False, limit_train_batches=4).fit(
            model, opt, Classification(), data
        )
        counts.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 32)
    return counts[-1]


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc; ru_minflt")
def test_steps_reuse_memory_instead_of_faulting_fresh_pages():
    # Each step allocates ~5 MB (batch, activations, gradients). Without keep_freed_memory
    # glibc hands much of it back and the next step faults it in again (hundreds of faults
    # a step: 750 measured); with it the steady state reuses the heap (about 15).
    assert _faults_per_step() < 150
