"""Runs that keep their word: a resume honours the run or refuses, a damaged checkpoint is
refused (resume falls back to the one before), kills lose no log lines and leave no junk,
results come before decorations, and a signal in any phase ends in one line."""

from __future__ import annotations

import json
import signal
import subprocess
import zipfile
from pathlib import Path

import pytest
import torch

from tests.conftest import DLX, run_dlx
from tests.engine.test_write_faults import in_namespace

# Digits, a small MLP with dropout, 23 batches an epoch, deterministic.
BASE = [
    "trainer.batch_size=64",
    "model.hidden=[32]",
    "model.dropout=0.3",
    "trainer.deterministic=true",
    "trainer.progress=false",
    "viz.enabled=false",
]


def train(run_dir: Path, env: dict[str, str], *extra: str, **kw) -> subprocess.CompletedProcess:
    return run_dlx("train", *BASE, *extra, f"hydra.run.dir={run_dir}", env=env, **kw)


def one_error_line(out: subprocess.CompletedProcess, code: int) -> str:
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == code, out.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-2000:]
    assert "Traceback" not in out.stderr + out.stdout
    return lines[0]


def test_a_changed_lr_is_refused_or_applied_for_real(tmp_path, cli_env):
    run_dir = tmp_path / "run"
    assert train(run_dir, cli_env, "trainer.max_epochs=1").returncode == 0
    record = (run_dir / ".hydra" / "config.yaml").read_bytes()
    rows = (run_dir / "metrics.csv").read_text()

    refused = train(run_dir, cli_env, "trainer.max_epochs=2", "optimizer.lr=0.05",
                    "trainer.resume=auto")  # fmt: skip
    line = one_error_line(refused, 2)
    assert "optimizer.lr (0.001 -> 0.05)" in line and "trainer.resume_allow_changes" in line
    assert (run_dir / ".hydra" / "config.yaml").read_bytes() == record  # the record stands
    assert (run_dir / "metrics.csv").read_text() == rows  # nothing trained

    allow = "trainer.resume_allow_changes=[optimizer.lr]"
    allowed = train(run_dir, cli_env, "trainer.max_epochs=2", "optimizer.lr=0.05",
                    "trainer.resume=auto", allow)  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    lrs = [float(r.split(",")[-1]) for r in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert lrs == [0.001, 0.05]  # the lr column: the new value really trained
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["config"]["optimizer"]["lr"] == 0.05
    assert ckpt["optimizer"]["param_groups"][0]["lr"] == 0.05
    assert (run_dir / ".hydra" / "config.yaml").read_bytes() == record
    history = [json.loads(ln) for ln in (run_dir / "resumes.jsonl").read_text().splitlines()]
    assert len(history) == 2 and "optimizer.lr=0.05" in history[1]["overrides"]


def flip_bytes_in_the_weights(path: Path, n: int = 800) -> None:
    """Overwrite n bytes in the middle of the checkpoint's largest tensor record."""
    with zipfile.ZipFile(path) as z:
        tensors = [i for i in z.infolist() if "/data/" in i.filename]  # not data.pkl
        info = max(tensors, key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    middle = start + info.file_size // 2
    data[middle : middle + n] = bytes(255 - b for b in data[middle : middle + n])
    path.write_bytes(bytes(data))


def test_a_damaged_checkpoint_is_refused_and_resume_falls_back(tmp_path, cli_env):
    run_dir = tmp_path / "run"
    assert train(run_dir, cli_env, "trainer.max_epochs=2").returncode == 0
    last = run_dir / "checkpoints" / "last.pt"
    assert torch.load(run_dir / "checkpoints" / "previous.pt", weights_only=True)["epoch"] == 1
    flip_bytes_in_the_weights(last)
    torch.load(last, weights_only=True)  # it still loads: only the checksum tells

    out = run_dlx("eval", f"ckpt={last}", f"hydra.run.dir={tmp_path / 'ev'}", env=cli_env)
    assert "is corrupt" in one_error_line(out, 2) and str(last) in out.stderr

    resumed = train(run_dir, cli_env, "trainer.max_epochs=3", "trainer.resume=auto")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout and "previous.pt" in resumed.stdout
    assert "at epoch 2, batch 0" in resumed.stdout  # previous.pt: after epoch 1
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 3


def test_after_a_kill_and_a_resume_the_logs_hold_every_step_once(tmp_path, cli_env):
    args = ["trainer.max_epochs=2", "trainer.log_every_n_steps=2",
            "trainer.checkpoint_every_n_steps=5"]  # fmt: skip
    ref = tmp_path / "ref"
    assert train(ref, cli_env, *args).returncode == 0
    run_dir = tmp_path / "run"
    # killed as it writes its 3rd checkpoint (step 15, mid-epoch): a temp file is left
    killed = train(run_dir, {**cli_env, "DLX_FAULT": "checkpoint_write:3"}, *args)
    assert killed.returncode == -signal.SIGKILL
    assert list((run_dir / "checkpoints").glob(".last.pt.*.tmp"))
    resumed = train(run_dir, cli_env, *args, "trainer.resume=auto")
    assert resumed.returncode == 0, resumed.stderr
    assert "at epoch 1, batch 10 (step 10)" in resumed.stdout
    assert (run_dir / "steps.csv").read_text() == (ref / "steps.csv").read_text()
    strip = lambda text: [r.rsplit(",", 3)[0] for r in text.splitlines()]  # noqa: E731
    assert strip((run_dir / "metrics.csv").read_text()) == strip((ref / "metrics.csv").read_text())
    assert not list(run_dir.rglob("*.tmp")), "a killed write's temp file was left"


def test_figures_on_a_full_disk_still_leave_the_result(tmp_path, cli_env):
    run_dir = tmp_path / "run"
    (run_dir / "plots").mkdir(parents=True)
    cmd = [DLX, "train", *BASE, "viz.enabled=true", "trainer.max_epochs=1",
           f"hydra.run.dir={run_dir}"]  # fmt: skip
    # the figures' folder is a 4 KiB file system: every figure hits ENOSPC
    script = f"mount -t tmpfs -o size=4k tmpfs '{run_dir / 'plots'}' && " + subprocess.list2cmdline(
        cmd
    )
    out = in_namespace(script, cli_env)
    assert out.returncode == 0, out.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) >= {"test/acc", "epochs", "wall_time_s"}
    assert "No space left on device" in out.stdout + out.stderr  # said, as a warning


@pytest.mark.parametrize(
    ("fault", "signum", "words"),
    [
        ("step:3:TERM", signal.SIGTERM, "stopped by SIGTERM at epoch 1, batch 3 (step 3); saved"),
        ("checkpoint_write:1:INT", signal.SIGINT, "stopped by SIGINT after epoch 1 (step 23)"),
        pytest.param(
            "test:1:TERM",
            signal.SIGTERM,
            "stopped by SIGTERM during the test pass; training is",
            marks=pytest.mark.slow,  # the same path as figures (after training), in test-all
        ),
        ("figures:1:TERM", signal.SIGTERM, "stopped by SIGTERM during the figures and loggers"),
    ],
    ids=["training", "during-a-save", "test-pass", "figures"],
)
def test_a_signal_in_any_phase_ends_in_one_line_with_how_to_resume(
    fault, signum, words, tmp_path, cli_env
):
    run_dir = tmp_path / "a run dir"  # a space: the hint must be quoted to paste
    out = train(run_dir, {**cli_env, "DLX_FAULT": fault}, "trainer.max_epochs=1")
    line = one_error_line(out, 128 + signum)
    assert words in line, line
    hint = line.split("resume with: " if "resume with: " in line else "finish it with: ")[1]
    assert f"'hydra.run.dir={run_dir}'" in hint and hint.endswith("trainer.resume=auto")
    path = f"{Path(DLX).parent}:{cli_env.get('PATH', '')}"  # `dlx`, as in the user's shell
    again = subprocess.run(hint, shell=True, env={**cli_env, "PATH": path}, capture_output=True,
                           text=True)  # fmt: skip
    assert again.returncode == 0, again.stderr  # the printed command really continues it
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 1
