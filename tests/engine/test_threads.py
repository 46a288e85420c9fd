"""Threads on a shared CPU: the cores divided among the processes a run starts, less a core
for each loader worker of a streamed split, trainer.num_threads over both, and one line when
the CPU is already busy. (`make bench --only threads` measures what it is for.)"""

from __future__ import annotations

import os

import pytest
import torch

from dlx.engine import runtime
from dlx.engine.runtime import busy_cpu_note, cores, loop_threads, set_threads
from tests.runs import train

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
    runtime._chosen.clear()


def test_the_cores_are_divided_among_the_processes_started():
    assert set_threads(None, 1) == cores() == torch.get_num_threads()
    assert set_threads(None, 2 * cores()) == 1  # never 0
    assert set_threads(3, 2) == 3 == torch.get_num_threads()  # trainer.num_threads wins


def test_loader_workers_get_their_cores_stage_after_stage():
    set_threads(None, 1)
    for _ in range(3):  # one fit per stage: the same count each time, not one less each
        loop_threads(None, CPU, workers=1)
        assert torch.get_num_threads() == max(1, cores() - 1)
    loop_threads(None, CPU, workers=0)  # an in-memory stage after a streamed one
    assert torch.get_num_threads() == cores()
    loop_threads(None, CPU, workers=10 * cores())
    assert torch.get_num_threads() == 1
    loop_threads(2, CPU, workers=1)  # trainer.num_threads as given
    assert torch.get_num_threads() == 2


def test_a_busy_cpu_is_said_in_one_line_unless_one_thread(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (cores() + 3.0, 0.0, 0.0))
    note = busy_cpu_note(2)
    assert note is not None and "trainer.num_threads=1" in note and "\n" not in note
    assert busy_cpu_note(1) is None
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert busy_cpu_note(2) is None


def test_a_run_records_the_threads_it_ran_with(tmp_path):
    smoke = ("dataset=digits", "debug=smoke", "viz.enabled=false")
    _, metrics = train(tmp_path, *smoke, "trainer.num_threads=1", name="one")
    assert metrics["num_threads"] == 1
    _, metrics = train(tmp_path, *smoke, name="default")
    assert metrics["num_threads"] == cores()
