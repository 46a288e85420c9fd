"""Writes that fail while a run goes on: a full disk, a file-size limit, a read-only folder.

Each ends in one `error:` line and a non-zero exit, leaves no temp file, and keeps the
previous checkpoint, which still loads, evaluates and resumes. The faults are real: a small
tmpfs or a read-only bind mount in a user namespace (`unshare -Urm`), RLIMIT_FSIZE in the
child process (Python ignores SIGXFSZ, so the write fails with EFBIG).
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from tests.conftest import DLX, run_dlx

# One epoch of five batches; the checkpoint (~740 kB: the MLP's 59k weights and Adam's two
# moments) is far larger than any other file of the run (a few kB at most).
BASE = ["debug=smoke", "viz.enabled=false", "logger=none"]
CKPT_LIMIT = 200_000  # bytes: every file but a checkpoint fits


def _unshare_works() -> bool:
    try:
        done = subprocess.run(["unshare", "-Urm", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


needs_unshare = pytest.mark.skipif(
    not _unshare_works(), reason="needs user namespaces (unshare -Urm) for a tmpfs or ro mount"
)


@pytest.fixture(scope="module")
def first_epoch(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A run dir after one epoch (last.pt and best.pt at epoch 1), and its environment."""
    root = tmp_path_factory.mktemp("faults")
    env = {**os.environ, "DLX_CACHE_DIR": str(root / "cache"), "DLX_OUTPUT_DIR": str(root)}
    env.pop("HYDRA_FULL_ERROR", None)
    out = run_dlx("train", *BASE, f"hydra.run.dir={root / 'run'}", env=env)
    assert out.returncode == 0, out.stderr
    return root / "run", env


def in_namespace(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`sh -c script` as root of a new user and mount namespace: its mounts vanish with it."""
    return subprocess.run(
        ["unshare", "-Urm", "sh", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def resume_cmd(run_dir: Path, epochs: int = 2) -> list[str]:
    return [
        DLX,
        "train",
        *BASE,
        f"trainer.max_epochs={epochs}",
        "trainer.resume=auto",
        f"hydra.run.dir={run_dir}",
    ]


def assert_one_line(out: subprocess.CompletedProcess[str], *words: str) -> str:
    lines = out.stderr.splitlines()
    assert out.returncode == 1, out.stderr[-2000:]  # a WriteError: a fault, not bad input
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]
    assert "Traceback" not in out.stderr + out.stdout
    return lines[0]


def assert_kept(run_dir: Path) -> None:
    """No temp file left; last.pt is the epoch-1 checkpoint, whole."""
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["step"] == 5


def assert_resumes(run_dir: Path, env: dict[str, str]) -> None:
    """With the fault gone, the kept checkpoint resumes and the run completes."""
    out = subprocess.run(resume_cmd(run_dir), env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "resumed from" in out.stdout and "at epoch 2, batch 0" in out.stdout
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 2
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 2


def test_a_file_size_limit_keeps_the_previous_checkpoint(first_epoch, tmp_path):
    src, env = first_epoch
    run_dir = shutil.copytree(src, tmp_path / "run")
    limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (CKPT_LIMIT, CKPT_LIMIT))  # noqa: E731
    out = subprocess.run(
        resume_cmd(run_dir), env=env, capture_output=True, text=True, preexec_fn=limit
    )
    line = assert_one_line(
        out,
        f"cannot write {run_dir / 'checkpoints' / 'last.pt'}: File too large",
        "ulimit -f",
        f"the previous checkpoint {run_dir / 'checkpoints' / 'last.pt'} is kept",
    )
    assert "trainer.resume=auto" in line  # how to go on
    assert_kept(run_dir)
    assert_resumes(run_dir, env)


@needs_unshare
def test_a_full_disk_keeps_the_previous_checkpoint(first_epoch, tmp_path):
    src, env = first_epoch
    run_dir = shutil.copytree(src, tmp_path / "run")
    saved, kept = tmp_path / "saved", tmp_path / "kept"
    shutil.copytree(run_dir, saved)
    kept.mkdir()
    # A tmpfs over the run dir with its files and 128 kB to spare: the new checkpoint's
    # temp file fills it ("No space left on device" inside torch.save).
    used = sum(-(-p.stat().st_size // 4096) * 4096 for p in saved.rglob("*") if p.is_file())
    q = shlex.quote
    script = (
        f"mount -t tmpfs -o size={used + 128 * 1024} tmpfs {q(str(run_dir))} && "
        f"cp -a {q(str(saved))}/. {q(str(run_dir))}/ && "
        f"{shlex.join(resume_cmd(run_dir))}; rc=$?; "
        f"cp -a {q(str(run_dir))}/. {q(str(kept))}/; exit $rc"  # what the fault left
    )
    out = in_namespace(script, env)
    last = run_dir / "checkpoints" / "last.pt"
    assert_one_line(
        out,
        f"cannot write {last}: No space left on device",
        f"the previous checkpoint {last} is kept",
    )
    assert_kept(kept)
    ev = run_dlx(
        "eval",
        f"ckpt={kept / 'checkpoints' / 'last.pt'}",
        f"hydra.run.dir={tmp_path / 'ev'}",
        env=env,
    )
    assert ev.returncode == 0, ev.stderr
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["checkpoint_epoch"] == 1
    assert_resumes(kept, env)


@needs_unshare
def test_a_read_only_checkpoints_folder_keeps_the_previous_checkpoint(first_epoch, tmp_path):
    src, env = first_epoch
    run_dir = shutil.copytree(src, tmp_path / "run")
    ckpts = shlex.quote(str(run_dir / "checkpoints"))
    script = (
        f"mount --bind {ckpts} {ckpts} && mount -o remount,bind,ro {ckpts} && "
        f"exec {shlex.join(resume_cmd(run_dir))}"
    )
    out = in_namespace(script, env)
    last = run_dir / "checkpoints" / "last.pt"
    assert_one_line(
        out, f"cannot write {last}: Read-only file system", f"the previous checkpoint {last}"
    )
    assert_kept(run_dir)
    assert_resumes(run_dir, env)


@needs_unshare
def test_metrics_json_on_a_full_disk_is_one_line(first_epoch, tmp_path):
    _, env = first_epoch
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # Out of inodes, the other way a disk is full: 7 hold the run dir, .hydra/ and its three
    # files, train.log and metrics.csv; metrics.json's temp file would be the 8th.
    cmd = [DLX, "train", *BASE, "trainer.checkpoint=false", f"hydra.run.dir={run_dir}"]
    q = shlex.quote(str(run_dir))
    script = (
        f"mount -t tmpfs -o size=1m,nr_inodes=7 tmpfs {q} && {shlex.join(cmd)}; rc=$?; "
        f"ls -A {q} > {q}.listing; cat {q}/metrics.csv > {q}.csv; exit $rc"
    )
    out = in_namespace(script, env)
    assert_one_line(out, f"cannot write {run_dir / 'metrics.json'}: No space left on device")
    listing = Path(f"{run_dir}.listing").read_text().split()
    assert sorted(listing) == [".hydra", "metrics.csv", "train.log"]  # no temp, no half file
    assert len(Path(f"{run_dir}.csv").read_text().splitlines()) == 2  # the epoch did finish


@needs_unshare
def test_eval_metrics_json_on_a_full_disk_is_one_line(first_epoch, tmp_path):
    src, env = first_epoch
    disk, ev = tmp_path / "disk", tmp_path / "disk" / "ev"
    disk.mkdir()
    cmd = [DLX, "eval", f"ckpt={src / 'checkpoints' / 'last.pt'}", f"hydra.run.dir={ev}"]
    q = shlex.quote(str(disk))
    script = (
        f"mount -t tmpfs -o size=64k tmpfs {q} && "
        f"(dd if=/dev/zero of={q}/filler bs=4k 2>/dev/null; true) && "
        f"{shlex.join(cmd)}; rc=$?; ls -A {q}/ev > {q}.listing; exit $rc"
    )
    out = in_namespace(script, env)
    # Hydra's record of the eval run is its first file: refused whole, no empty folders left
    assert_one_line(out, f"cannot write {ev / '.hydra' / 'config.yaml'}: No space left")
    assert not ev.exists() or Path(f"{disk}.listing").read_text().split() == []
