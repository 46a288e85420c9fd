"""scripts/gpu_proof.sh and `make test-gpu` without a GPU: the script parses, `make test-gpu
DEVICE=cpu` selects the device tests, and reproduce.py passes overrides on to every run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_proof.sh"


def test_script_is_valid_bash_and_explains_itself():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    out = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "gpu_proof.sh prepare" in out.stdout and 'carry=[".gpu"]' in out.stdout
    assert "SMOKE" in out.stdout and "#" not in out.stdout.splitlines()[0]
    bad = subprocess.run(["bash", str(SCRIPT), "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "prepare" in bad.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_test_gpu_runs_the_device_tests_on_the_chosen_device(tmp_path):
    dry = subprocess.run(
        ["make", "-n", "test-gpu", "DEVICE=cpu", f"VENV={tmp_path}/venv"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert f"DLX_TEST_DEVICE=cpu {tmp_path}/venv/bin/python -m pytest -m device" in dry.stdout


def collect(*args: str, device: str = "cpu") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DLX_TEST_DEVICE": device}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_device_tests_cover_the_cuda_path():
    out = collect("-m", "device", "tests/engine", "tests/test_eval.py", "tests/viz")
    assert out.returncode == 0, out.stdout + out.stderr
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    assert len(ids) >= 30 and all(i.endswith("]") and "cpu" in i for i in ids)
    for wanted in (
        "test_trainer.py::test_learns_separable_data[cpu]",
        "test_trainer.py::test_uint8_inputs_sit_on_the_device_and_are_scaled_per_batch[cpu]",
        "test_resume.py::test_sigkill_then_resume_is_bit_identical[cpu-mid-epoch]",
        "test_accel.py::test_mixed_precision_on_digits_tracks_fp32[cpu-16-mixed]",
        "test_accel.py::test_mixed_precision_on_digits_tracks_fp32[cpu-bf16-mixed]",
        "test_accel.py::test_compile_trains_like_eager_and_reports_compile_time[cpu]",
        "test_accel.py::test_channels_last_gives_the_same_training[cpu]",
        "test_ddp.py::test_two_processes_match_one_and_write_one_run_dir[cpu]",
        "test_eval.py::test_eval_reproduces_the_runs_test_metrics[cpu]",
        "test_figures.py::test_cnn_feature_maps_per_conv_layer[cpu]",
    ):
        assert any(i.endswith(wanted) for i in ids), wanted


def test_cuda_asked_for_without_cuda_stops_in_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = collect("tests/engine/test_trainer.py", device="cuda")
    assert out.returncode == 4  # pytest's usage error
    assert "asks for CUDA and torch.cuda.is_available() is False" in out.stderr


def test_reproduce_passes_overrides_to_every_run(tmp_path):
    doc = tmp_path / "R.md"
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "reproduce.py"), "--seeds", "1",
         "trainer.accelerator=cpu", "--only", "6_16", "--out", str(tmp_path / "runs"),
         "--doc", str(doc)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "DLX_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "trainer.accelerator=cpu" in out.stdout.split("$ ", 1)[1].splitlines()[0]
    text = doc.read_text()
    assert "--only 6_16 trainer.accelerator=cpu`" in text
    assert (
        "| 6-16 | Q-learning, 6-state maze | `greedy_path` | [2, 3, 1, 5] | [2, 3, 1, 5] |" in text
    )
    assert re.search(r"^total wall time: [\d.]+ s for 1 experiments?$", out.stdout, re.M)


def test_reproduce_into_a_folder_of_earlier_runs_is_one_line_and_keeps_the_doc(tmp_path):
    """Each listing would refuse the taken sweep dir and the doc would be rewritten empty."""
    (tmp_path / "runs" / "6_16_qlearning_maze" / "0").mkdir(parents=True)
    doc = tmp_path / "R.md"
    doc.write_text("the table of an earlier run\n")
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "reproduce.py"), "--seeds", "1", "--only",
         "6_16", "--out", str(tmp_path / "runs"), "--doc", str(doc)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode != 0 and out.stdout == ""
    assert out.stderr.strip().count("\n") == 0 and "6_16_qlearning_maze" in out.stderr
    assert "--reuse" in out.stderr and "Traceback" not in out.stderr
    assert doc.read_text() == "the table of an earlier run\n"
