"""The logger contract with the trainer: what it hands over, and when."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlx.command import check
from dlx.compose import compose
from dlx.core.errors import ConfigError
from dlx.loggers import Logger
from dlx.loggers.csv import CSVLogger, read_steps
from dlx.loggers.part import LoggerPart
from tests.engine.test_trainer import blobs, fit


class Recorder(Logger):
    def __init__(self):
        self.calls = []

    def start(self, step, epoch):
        self.calls.append(("start", step, epoch))

    def log_losses(self, step, epoch, values):
        self.calls.append(("losses", step, epoch, len(values)))

    def log_epoch(self, row, step):
        self.calls.append(("epoch", step, row["epoch"]))


def test_trainer_hands_over_the_guards_reads_and_each_epoch():
    recorder = Recorder()
    trainer, _, _ = fit(
        blobs(),
        max_epochs=2,
        limit_train_batches=5,
        log_every_n_steps=2,
        callbacks=[LoggerPart(recorder)],
    )
    # windows of 2 steps, and the rest at the end of each epoch; then the epoch's row
    assert recorder.calls == [
        ("start", 0, 0),
        ("losses", 2, 1, 2), ("losses", 4, 1, 2), ("losses", 5, 1, 1), ("epoch", 5, 1),
        ("losses", 7, 2, 2), ("losses", 9, 2, 2), ("losses", 10, 2, 1), ("epoch", 10, 2),
    ]  # fmt: skip
    assert len(trainer.state.rows) == 2


def test_csv_steps_kept_up_to_the_resumed_checkpoint(tmp_path):
    logger = CSVLogger(tmp_path)
    logger.start(0, 0)
    for step in (2, 4, 6, 8):
        logger.log_losses(step, 1, [1.0, 3.0])
    logger.close()
    assert read_steps(tmp_path / "steps.csv") == [(s, 1, 2.0) for s in (2, 4, 6, 8)]
    resumed = CSVLogger(tmp_path)
    resumed.start(4, 1)  # last.pt was at step 4: the killed run's steps 6 and 8 go
    resumed.log_losses(6, 1, [5.0])
    resumed.close()
    assert read_steps(tmp_path / "steps.csv") == [(2, 1, 2.0), (4, 1, 2.0), (6, 1, 5.0)]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("logger.csv._target_=os.system", "not allowed"),
        ("+logger.mine={filename: x}", "logger.mine must be a mapping with a _target_"),
    ],
)
def test_bad_logger_config_is_refused_before_training(override, message, tmp_path):
    # A bad target is refused as the config is composed; a bad shape by check_run.
    with pytest.raises(ConfigError, match=message):
        check(compose("train", [override]), None)


def test_logger_none_and_several():
    assert compose("train", ["logger=none"]).logger in (None, {})
    assert set(compose("train", ["logger=[csv,tensorboard,mlflow,wandb]"]).logger) == {
        "csv",
        "tensorboard",
        "mlflow",
        "wandb",
    }


def test_csv_run_without_figures_imports_no_optional_library(tmp_path):
    """logger=csv must not pay for TensorBoard, MLflow or W&B at start-up, nor a run without
    figures for matplotlib."""
    import subprocess
    import sys

    code = (
        "import sys; from tests.runs import train; from pathlib import Path; "
        f"train(Path({str(tmp_path)!r}), 'dataset=digits', 'debug=smoke', 'viz.enabled=false'); "
        "optional = ('tensorboard', 'mlflow', 'wandb', 'matplotlib'); "
        "print(sorted(m for m in optional if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
