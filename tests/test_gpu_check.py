"""scripts/gpu_check.py: refuses without CUDA; its CPU dry mode runs the same code path."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def test_refuses_without_cuda_in_one_line():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no GPU, even on a machine with one
    out = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: gpu-check needs a CUDA GPU")
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_bad_arguments_are_refused():
    gpu_check = load_script()
    with pytest.raises(SystemExit) as exit_:
        gpu_check.main(["--only", "6_1"])  # a prefix of no listing (6_12 is not 6_1)
    assert exit_.value.code == 2


def dry_run(tmp_path, monkeypatch, capsys, *args: str) -> tuple[int, str, list[str]]:
    monkeypatch.setenv("DLX_CACHE_DIR", str(tmp_path / "cache"))
    code = load_script().main(["--device", "cpu", "--dry", *args])
    out = capsys.readouterr().out
    return code, out, [line for line in out.splitlines() if line.startswith("| 6-")]


def test_dry_run_on_cpu_prints_the_table(tmp_path, monkeypatch, capsys):
    # One listing (the CNN: channels_last, a validation metric) keeps this quick.
    code, out, rows = dry_run(tmp_path, monkeypatch, capsys, "--no-compile", "--only", "6_13")
    assert code == 0, out
    assert out.startswith("torch ") and "device: cpu" in out
    assert len(rows) == 2 and "| fp32 eager |" in rows[0] and "| bf16 |" in rows[1]
    assert "| ok |" in rows[1] and "x |" in rows[1]  # checked, with a speed-up against fp32


@pytest.mark.slow
def test_dry_run_of_every_listing(tmp_path, monkeypatch, capsys):
    code, out, rows = dry_run(tmp_path, monkeypatch, capsys, "--no-compile")
    assert code == 0, out
    assert len(rows) == 6  # three listings, fp32 eager and bf16 each
    assert sum("| bf16 |" in r and "| ok |" in r for r in rows) == 3


@pytest.mark.slow  # torch.compile on CPU builds C++: tens of seconds
def test_dry_run_with_compile_reports_compile_time(tmp_path, monkeypatch, capsys):
    code, out, rows = dry_run(tmp_path, monkeypatch, capsys, "--only", "6_9")
    assert code == 0, out
    row = next(line for line in rows if "| bf16 + compile |" in line)
    compile_s = float(row.split("|")[9])
    assert compile_s > 0


def test_time_limit_stops_with_a_partial_table(tmp_path, monkeypatch, capsys):
    code, out, _ = dry_run(tmp_path, monkeypatch, capsys, "--no-compile", "--time-limit", "1")
    assert code == 1
    assert "FAILED: time limit of 1 s reached" in out
