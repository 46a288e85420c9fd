"""Kill a real `dlx train` with SIGKILL at five points, resume it, and compare bit for bit
(on each device of the `device` fixture: `make test-gpu` runs it on CUDA)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch

from tests.conftest import DLX, run_dlx
from tests.runs import TIMING, sigterm_during_training

# Digits, 3 epochs of 18 batches, dropout (so the torch RNG matters), a validation split, a
# mid-epoch checkpoint every 7 optimizer steps, deterministic algorithms.
ARGS = [
    "trainer.max_epochs=3",
    "trainer.batch_size=64",
    "dataset.val_split=0.2",
    "model.hidden=[64]",
    "model.dropout=0.3",
    "trainer.deterministic=true",
    "trainer.checkpoint_every_n_steps=7",
    "trainer.progress=false",
]


def final_state(run_dir: Path) -> tuple[dict, dict]:
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return ckpt["model"], {k: v for k, v in metrics.items() if k not in TIMING}


def on(device: str) -> list[str]:
    return [*ARGS, f"trainer.accelerator={device}"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, device) -> tuple[dict, dict, list[str]]:
    run_dir = tmp_path_factory.mktemp("ref")
    env = {**os.environ, "DLX_CACHE_DIR": str(run_dir / "cache")}
    out = run_dlx("train", *on(device), f"hydra.run.dir={run_dir}", env=env)
    assert out.returncode == 0, out.stderr
    csv = (run_dir / "metrics.csv").read_text().splitlines()
    return (*final_state(run_dir), csv)


@pytest.mark.parametrize(
    "fault",
    [
        # the default suite keeps the two hardest points; the rest run with `make test-all`
        pytest.param("start:1", id="start", marks=pytest.mark.slow),
        pytest.param("step:25", id="mid-epoch"),
        pytest.param("epoch_end:1", id="between-epochs", marks=pytest.mark.slow),
        pytest.param("checkpoint_write:3", id="during-checkpoint-write"),
        pytest.param("eval:2", id="during-eval", marks=pytest.mark.slow),
    ],
)
def test_sigkill_then_resume_is_bit_identical(fault, reference, tmp_path, cli_env, device):
    run_dir = tmp_path / "run"
    killed = run_dlx(
        "train", *on(device), f"hydra.run.dir={run_dir}", env={**cli_env, "DLX_FAULT": fault}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if fault == "checkpoint_write:3":  # the kill left the temp file, and the old last.pt intact
        assert list((run_dir / "checkpoints").glob(".last.pt.*.tmp"))
        torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    resumed = run_dlx(
        "train", *on(device), f"hydra.run.dir={run_dir}", "trainer.resume=auto", env=cli_env
    )
    assert resumed.returncode == 0, resumed.stderr
    if fault != "start:1":
        assert "resumed from" in resumed.stdout
    weights, metrics = final_state(run_dir)
    ref_weights, ref_metrics, ref_csv = reference
    assert weights.keys() == ref_weights.keys()
    for k in weights:
        assert torch.equal(weights[k], ref_weights[k]), f"{k} differs after resume"
    assert metrics == ref_metrics
    strip = lambda rows: [r.rsplit(",", 3)[0] for r in rows]  # noqa: E731 (drop time columns)
    assert strip((run_dir / "metrics.csv").read_text().splitlines()) == strip(ref_csv)


def test_sigterm_saves_a_resumable_checkpoint_within_a_step(tmp_path, cli_env):
    run_dir = tmp_path / "run"
    code, err, took = sigterm_during_training(
        [
            DLX,
            "train",
            "trainer.max_epochs=100000",
            "trainer.batch_size=8",
            "trainer.progress=false",
            f"hydra.run.dir={run_dir}",
        ],
        cli_env,
    )
    assert code == 128 + signal.SIGTERM
    assert took < 10
    assert err.startswith("error: stopped by SIGTERM") and err.count("\n") == 1
    assert "trainer.resume=auto" in err and f"hydra.run.dir={run_dir}" in err
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["epoch"] >= 2
    # The hint's command continues the run (here capped at the next epoch to keep it short).
    out = run_dlx(
        "train",
        "trainer.batch_size=8",
        "trainer.progress=false",
        f"trainer.max_epochs={ckpt['epoch'] + 1}",
        f"hydra.run.dir={run_dir}",
        "trainer.resume=auto",
        env=cli_env,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == ckpt["epoch"] + 1


# The streamed path: images decoded by 2 DataLoader workers, augmented (random crop and
# flip, seeded per sample and epoch), a mid-epoch checkpoint every 3 steps.
STREAM = [
    "dataset=image_folder",
    "dataset.in_memory=false",
    "dataset.image_size=8",
    "dataset.random_crop=2",
    "dataset.random_flip=true",
    "dataset.val_split=0.2",
    "trainer.num_workers=2",
    "trainer.num_threads=1",  # the same for the reference read without workers
    "model=cnn",
    "model.filters=[4]",
    "model.hidden=[8]",
    "trainer.max_epochs=2",
    "trainer.batch_size=8",
    "trainer.deterministic=true",
    "trainer.checkpoint_every_n_steps=3",
    "trainer.progress=false",
    "viz.enabled=false",
]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    from tests.data.formats import write_image_folder

    root = tmp_path_factory.mktemp("imgs")
    write_image_folder(root, {"a": 20, "b": 20, "c": 20}, size=(10, 10))
    return root


def test_streamed_batches_resume_bit_identical_after_sigkill(images, tmp_path, cli_env, device):
    # On CUDA the DataLoader pins its batches' memory and the copies are asynchronous.
    args = [*STREAM, f"dataset.root={images}", f"trainer.accelerator={device}"]
    ref = tmp_path / "ref"
    out = run_dlx("train", *args, "trainer.num_workers=0", f"hydra.run.dir={ref}", env=cli_env)
    assert out.returncode == 0, out.stderr
    run_dir = tmp_path / "run"
    killed = run_dlx(
        "train", *args, f"hydra.run.dir={run_dir}", env={**cli_env, "DLX_FAULT": "step:7"}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = run_dlx(
        "train", *args, f"hydra.run.dir={run_dir}", "trainer.resume=auto", env=cli_env
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and "at epoch 2, batch 1 (step 6)" in resumed.stdout
    # the same weights as the uninterrupted run read by no worker process at all
    weights, metrics = final_state(run_dir)
    ref_weights, ref_metrics = final_state(ref)
    for k in weights:
        assert torch.equal(weights[k], ref_weights[k]), f"{k} differs after resume"
    assert metrics == ref_metrics
