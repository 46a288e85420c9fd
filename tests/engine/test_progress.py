"""What a person watches while a run trains: a progress bar refreshed by time, and samples/s
that count only what this sitting trained."""

from __future__ import annotations

import signal
from types import SimpleNamespace

import pytest

from dlx.engine.parts import Part
from dlx.engine.parts import progress as progress_module
from dlx.engine.parts.preemption import Preempted
from tests.engine.test_trainer import blobs, fit


def test_progress_bar_refreshes_by_time_not_by_logged_steps(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    bar = progress_module.Progress()
    shown = []  # the batch the bar showed at each refresh
    monkeypatch.setattr(bar.bar, "refresh", lambda: shown.append(bar.bar.tasks[0].completed))
    try:
        state = SimpleNamespace(epoch=0, batch=0, seen=0, step=0)
        trainer = SimpleNamespace(
            state=state, cfg=SimpleNamespace(max_epochs=1), batches=SimpleNamespace(steps=2000)
        )
        bar.on_train_epoch_start(trainer)

        def steps(n, seconds_each):
            for _ in range(n):
                state.batch += 1
                state.seen += 32
                clock[0] += seconds_each
                # the step's loss is not handed over: the bar cannot read it (no host sync)
                bar.on_train_batch_end(trainer, None)

        steps(1000, 0.001)  # 1 s of fast steps: about 20 refreshes, not 1000 and not 1
        assert 18 <= len(shown) <= 21
        assert shown[-1] >= 950  # it shows where the epoch is, not where a log read was
        shown.clear()
        steps(10, 0.2)  # slow steps: each one shows
        assert shown == list(range(1001, 1011))
    finally:
        bar.teardown(None)


class StopAt(Part):
    """A SIGTERM as the trainer sees it, at optimizer step `at` (mid-epoch)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_end(self, trainer, loss) -> None:
        if trainer.state.step == self.at:
            trainer.stop.signum = signal.SIGTERM


def test_samples_per_s_after_a_resume_counts_only_the_resumed_part(tmp_path):
    data = blobs(n=600)  # 480 train samples: 48 batches of 10
    common = {"max_epochs": 2, "batch_size": 10, "run_dir": tmp_path}
    with pytest.raises(Preempted):
        fit(data, callbacks=[StopAt(58)], **common)  # epoch 2, after 10 of its 48 batches
    trainer, _, _ = fit(data, resume="auto", **common)
    first, resumed = trainer.state.rows
    assert first["samples_per_s"] * first["epoch_time_s"] == pytest.approx(480)
    # the 100 samples before the stop were trained (and timed) by the stopped sitting
    assert resumed["samples_per_s"] * resumed["epoch_time_s"] == pytest.approx(380)
