"""The accelerated path: bf16/fp16 autocast, torch.compile with an untimed warm-up,
channels_last, cuDNN autotuning. Each switch must train to (nearly) the fp32 eager result,
on each device of the `device` fixture (`make test-gpu` on a GPU machine: CUDA)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlx.core.data import Data, Spec
from dlx.core.tasks import Classification
from dlx.data.digits import Digits
from dlx.engine.loop import Trainer
from dlx.engine.runtime import configure_backends
from dlx.engine.warmup import warm_up
from dlx.models.cnn import CNN
from dlx.models.mlp import MLP


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Data:
    return Digits(cache_dir=tmp_path_factory.mktemp("cache")).load()


def train(
    data: Data, model_fn, epochs: int = 3, device: str = "cpu", **kwargs
) -> tuple[list[float], dict, nn.Module]:
    torch.manual_seed(0)
    model = model_fn(data.spec)
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    trainer = Trainer(
        max_epochs=epochs, batch_size=64, progress=False, accelerator=device, **kwargs
    )
    metrics = trainer.fit(model, opt, Classification(), data)
    return [row["train/loss"] for row in trainer.state.rows], metrics, model


def mlp(spec):
    return MLP(spec, hidden=[64], init="torch")


@pytest.fixture(scope="module")
def fp32(digits, device) -> tuple[list[float], dict, nn.Module]:
    return train(digits, mlp, device=device)


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])  # 16-mixed: a GradScaler
def test_mixed_precision_on_digits_tracks_fp32(digits, fp32, precision, device):
    ref, ref_m, _ = fp32
    low, low_m, _ = train(digits, mlp, precision=precision, device=device)
    assert low[-1] < low[0] * 0.5  # it learns
    # Same init and batches: the final train loss stays within 5% of fp32's, accuracy 2 pts.
    assert low[-1] == pytest.approx(ref[-1], rel=0.05)
    assert abs(low_m["test/acc"] - ref_m["test/acc"]) <= 0.02
    assert low != ref  # autocast did run in lower precision


def test_bf16_autocast_runs_the_matmuls_in_bf16(digits, device):
    trainer = Trainer(precision="bf16-mixed", progress=False, accelerator=device)
    model = mlp(digits.spec).to(trainer.device)
    with trainer.autocast:
        out = model(digits.train.x[:4].float().to(trainer.device))
    assert out.dtype == torch.bfloat16 and out.device.type == device


def test_channels_last_gives_the_same_training(digits, device):
    def cnn(channels_last):
        return lambda spec: CNN(spec, conv_dropout=0.0, dropout=0.0, channels_last=channels_last)

    short = {"epochs": 2, "limit_train_batches": 10, "device": device}
    ref, ref_m, _ = train(digits, cnn(False), **short)
    cl, cl_m, model = train(digits, cnn(True), **short)
    assert model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert cl[-1] < cl[0]
    # A memory layout, not a different computation: equal up to summation order. On CUDA
    # cuDNN picks other kernels per layout, and runs convolutions in TF32 (torch's default).
    assert cl == pytest.approx(ref, rel=1e-4 if device == "cpu" else 1e-2)
    assert cl_m["test/acc"] == pytest.approx(ref_m["test/acc"], abs=1 / 360)


def test_channels_last_converts_the_input_batch(device):
    seen = []
    model = CNN(Spec((3, 8, 8), 10), channels_last=True).to(device)  # 3 channels: layouts differ
    model.features[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    x = torch.zeros(2, 3, 8, 8, device=device)  # the trainer hands over plain NCHW batches
    model(x)
    assert not x.is_contiguous(memory_format=torch.channels_last)
    assert seen[0].is_contiguous(memory_format=torch.channels_last)


class Noisy(nn.Module):
    """Dropout (RNG), batch norm (buffers): everything a warm-up could disturb."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.Dropout(0.5), nn.Linear(32, 10)
        )

    def forward(self, x):
        return self.net(x)


def test_warm_up_runs_backward_and_leaves_no_trace(digits):
    torch.manual_seed(0)
    model = Noisy()
    backward_calls = []
    model.net[1].weight.register_hook(lambda g: backward_calls.append(g.abs().sum().item()))
    params = [p.detach().clone() for p in model.parameters()]
    buffers = [b.detach().clone() for b in model.buffers()]
    rng = torch.get_rng_state()
    x, y = digits.train.x[:64].float() / 16, digits.train.y[:64]
    took = warm_up(
        model, model, Classification(), [(x, y), (x[:10], y[:10])], torch.autocast("cpu")
    )
    assert len(backward_calls) == 2 and backward_calls[0] > 0 and took > 0
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(params, model.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers(), strict=True))
    assert torch.equal(rng, torch.get_rng_state())


@pytest.mark.slow  # compiling on CPU generates and builds C++ (gcc): ~30-60 s here
def test_compile_trains_like_eager_and_reports_compile_time(digits, fp32, device):
    eager, eager_m, _ = fp32
    comp, comp_m, _ = train(digits, mlp, compile=True, device=device)
    assert all(torch.isfinite(torch.tensor(comp)))
    assert comp[-1] < comp[0]
    assert comp == pytest.approx(eager, rel=1e-3)  # fused kernels round differently
    assert comp_m["compile_time_s"] > 0 and "compile_time_s" not in eager_m
    # The warm-up compiled both shapes (64 and the last 29): no compile inside the epochs,
    # so the first epoch is not much slower than the second.
    first, *later = comp_m["epoch_time_s"]
    assert first < max(5 * max(later), 1.0)


def test_cudnn_benchmark_follows_the_device_and_determinism():
    before = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = False
        configure_backends(torch.device("cpu"), deterministic=False)
        assert torch.backends.cudnn.benchmark is False  # no CUDA, nothing to tune
        configure_backends(torch.device("cuda"), deterministic=False)
        assert torch.backends.cudnn.benchmark is True
        configure_backends(torch.device("cuda"), deterministic=True)
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = before
