"""logger=tensorboard: real event files, read back with TensorBoard's EventAccumulator."""

from __future__ import annotations

import csv

import pytest

from tests.runs import train

# An optional extra (dlx[tensorboard]); `make install` installs it, so CI runs these tests.
pytest.importorskip("tensorboard")


def test_scalars_per_step_and_epoch_hparams_and_graph(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run_dir, metrics = train(
        tmp_path,
        "dataset=digits",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=6",
        "trainer.log_every_n_steps=2",
        "optimizer.lr=0.002",
        "viz.enabled=false",
        logger="[csv,tensorboard]",
    )
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    step_losses = events.Scalars("train/loss_step")
    # the NaN guard reads the losses every 2 steps: 3 windows an epoch, at optimizer steps
    assert [e.step for e in step_losses] == [2, 4, 6, 8, 10, 12]
    # steps.csv (the csv logger) got the same windows from the same reads
    with (run_dir / "steps.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8, 10, 12]
    assert [float(r["loss"]) for r in rows] == pytest.approx([e.value for e in step_losses])
    # epoch rows at the step each epoch ended, equal to metrics.csv
    with (run_dir / "metrics.csv").open() as f:
        epochs = list(csv.DictReader(f))
    train_loss = events.Scalars("train/loss")
    assert [e.step for e in train_loss] == [6, 12]
    assert [e.value for e in train_loss] == pytest.approx([float(r["train/loss"]) for r in epochs])
    # the window means average to the epoch's loss (equal batches here)
    assert sum(e.value for e in step_losses[:3]) / 3 == pytest.approx(train_loss[0].value, 1e-5)
    assert events.Scalars("test/acc")[-1].value == pytest.approx(metrics["test/acc"])
    # hyperparameters: the flattened config, with the final metrics as the HParams columns
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["optimizer.lr"].number_value == pytest.approx(0.002)
    assert start.session_start_info.hparams["model._target_"].string_value == "dlx.models.mlp.MLP"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    assert {m.name.tag for m in experiment.experiment.metric_infos} >= {"test/acc", "train/loss"}
    # the model graph, traced after training
    assert events.Tags()["graph"]
    assert b"Linear" in events.Graph().SerializeToString()


def test_resume_purges_what_a_killed_run_wrote_after_its_checkpoint(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    common = (
        "dataset=digits",
        "trainer.limit_train_batches=4",
        "trainer.log_every_n_steps=2",
        "viz.enabled=false",
    )
    run_dir, _ = train(tmp_path, *common, "trainer.max_epochs=1", logger="tensorboard")
    # A run killed after its step-4 checkpoint had logged steps 6 and 8 already:
    with SummaryWriter(str(run_dir / "tensorboard")) as killed:
        for step in (6, 8):
            killed.add_scalar("train/loss_step", 999.0, step)
    train(tmp_path, *common, "trainer.max_epochs=2", "trainer.resume=auto", logger="tensorboard")
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    steps = events.Scalars("train/loss_step")
    assert [e.step for e in steps] == [2, 4, 6, 8]
    assert all(e.value < 100 for e in steps)  # the killed run's 999s were purged
    assert [e.step for e in events.Scalars("train/loss")] == [4, 8]
