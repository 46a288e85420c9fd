"""Data-parallel training: real 2-process gloo runs of the `dlx` CLI on CPU, no mocks.

"Within 1%" (the acceptance bar): a DDP run with trainer.batch_size=64 (the global batch,
32 per process) against a single-process run with batch_size=64, same seed, no dropout:
final train/loss, test/loss and test/acc, and every epoch's train/loss. The ranks take
strided shares of the same permutation's batches, so both runs see the same batches and
in practice agree to float rounding (the test asserts 1%, and 1e-4 on the losses).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from dlx.compose import compose
from dlx.core.errors import ConfigError
from dlx.engine import group as distributed
from dlx.engine.batches import shares
from dlx.engine.group import Dist
from dlx.engine.loop import Trainer
from dlx.train import run as train_in_process
from tests.conftest import BIN, DLX, run_dlx
from tests.runs import TIMING, sigterm_during_training

# Digits (1,437 train): 23 batches of 64, the last of 29 split 15/14 between the ranks.
ARGS = [
    "trainer.max_epochs=3",
    "trainer.batch_size=64",
    "model.hidden=[64]",
    "trainer.accelerator=cpu",
    "trainer.progress=false",
]
DDP = ["trainer.devices=2"]


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    col = lines[0].split(",").index("train/loss")
    return [float(line.split(",")[col]) for line in lines[1:]]


def test_two_processes_match_one_and_write_one_run_dir(tmp_path, cli_env, device):
    # On CUDA: one GPU per process, NCCL (`make test-gpu` on a machine with 2 GPUs).
    if device == "cuda" and torch.cuda.device_count() < 2:
        pytest.skip(f"2 NCCL processes need 2 CUDA devices; {torch.cuda.device_count()} visible")
    args = [a for a in ARGS if not a.startswith("trainer.accelerator=")]
    args.append(f"trainer.accelerator={device}")
    single = tmp_path / "single"
    train_in_process(compose("train", args), single)  # single-process reference, in-process
    # No hydra.run.dir: the timestamped default, where one dir per rank would show up.
    ddp = run_dlx("train", *args, *DDP, env=cli_env)
    assert ddp.returncode == 0, ddp.stderr
    runs = [p for p in (tmp_path / "outputs" / "train").glob("*/*") if p.is_dir()]
    assert len(runs) == 1, runs
    run = runs[0]
    assert (run / ".hydra" / "config.yaml").is_file()
    assert (run / "checkpoints" / "last.pt").is_file()
    assert not list(run.rglob("*.tmp"))
    log = (run / "train.log").read_text()  # rank 0's records, relayed to the job's log
    backend = "nccl" if device == "cuda" else "gloo"
    assert f"2 {backend} worker processes" in log and "epoch 3/3" in log
    assert ddp.stdout.count("epoch 1/3") == 1  # only rank 0 reports

    a, b = metrics(single), metrics(run)
    for key in ("train/loss", "test/loss", "test/acc"):
        assert b[key] == pytest.approx(a[key], rel=0.01), key
        assert b[key] == pytest.approx(a[key], rel=1e-4), key  # same batches: rounding only
    assert losses(run) == pytest.approx(losses(single), rel=1e-4)
    assert b["epochs"] == 3 and b["num_params"] == a["num_params"]
    assert losses(run)[-1] < losses(run)[0]


@pytest.mark.parametrize(("n", "batch", "world"), [(1437, 64, 2), (100, 20, 4), (103, 12, 3)])
def test_rank_shares_make_up_each_global_batch(n, batch, world):
    """The batches' slicing (perm[rank::world], batch/world at a time) gives every rank its
    strided share of each single-process batch, and the last batch's loss weights make the
    DDP gradient average equal the batch mean."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    bs = batch // world
    per_rank = []
    for rank in range(world):
        steps, last_b, weight = shares(n, batch, Dist(rank, world))
        mine = perm[rank::world]
        per_rank.append(
            (steps, last_b, weight, [mine[b * bs : (b + 1) * bs] for b in range(steps)])
        )
    steps = per_rank[0][0]
    assert all(r[0] == steps for r in per_rank)
    for b in range(steps):
        union = torch.cat([r[3][b] for r in per_rank])
        assert sorted(union.tolist()) == sorted(perm[b * batch : (b + 1) * batch].tolist())
    last = steps - 1
    g = sum(len(r[3][last]) for r in per_rank)
    # DDP averages: (1/world) * sum_r weight_r * mean_r must equal (1/g) * sum of losses
    for _, last_b, weight, batches in per_rank:
        w = weight if last_b == last else 1.0
        assert w / world / len(batches[last]) == pytest.approx(1 / g)


def test_a_last_batch_smaller_than_the_world_is_dropped():
    assert shares(64 * 5 + 3, 64, Dist(0, 4)) == (5, -1, 1.0)


def test_evaluation_shares_cover_the_split_once():
    for n, world in [(360, 2), (361, 4), (3, 4)]:
        parts = [Dist(r, world).share(n) for r in range(world)]
        assert [i for lo, hi in parts for i in range(lo, hi)] == list(range(n))


def test_bad_device_settings_are_one_clear_line(monkeypatch, cli_env):
    with pytest.raises(ConfigError, match="starts its processes from `dlx train`"):
        Trainer(devices=2)
    with pytest.raises(ConfigError, match="mps"):
        distributed.check_devices(2, "mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match="only 1 CUDA device"):
        distributed.check_devices(2, "cuda")
    assert distributed.check_devices(1, "auto") == "nccl"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert distributed.check_devices(2, "auto") == "gloo"
    out = run_dlx("train", "trainer.devices=2", "trainer.batch_size=33", env=cli_env)
    assert out.returncode == 2
    assert out.stderr.startswith("error: trainer.batch_size=33 is the global batch")
    assert out.stderr.count("\n") == 1


# -- slow: several 2-process runs each ----------------------------------------------------------

RESUME = [
    *ARGS,
    *DDP,
    "dataset.val_split=0.2",
    "model.dropout=0.3",  # the per-rank RNG streams matter
    "trainer.deterministic=true",
    "trainer.checkpoint_every_n_steps=7",
]


def final(run_dir: Path) -> tuple[dict, dict, list[str]]:
    weights = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    m = {k: v for k, v in metrics(run_dir).items() if k not in TIMING}
    rows = [r.rsplit(",", 3)[0] for r in (run_dir / "metrics.csv").read_text().splitlines()]
    return weights, m, rows


@pytest.fixture(scope="module")
def ddp_reference(tmp_path_factory) -> tuple[dict, dict, list[str]]:
    run_dir = tmp_path_factory.mktemp("ddp-ref")
    out = run_dlx("train", *RESUME, f"hydra.run.dir={run_dir}")
    assert out.returncode == 0, out.stderr
    return final(run_dir)


def assert_same(run_dir: Path, reference: tuple[dict, dict, list[str]]) -> None:
    weights, m, rows = final(run_dir)
    ref_weights, ref_m, ref_rows = reference
    assert all(torch.equal(weights[k], ref_weights[k]) for k in ref_weights)
    assert m == ref_m
    assert rows == ref_rows


@pytest.mark.slow
def test_ddp_killed_mid_epoch_resumes_bit_identical(ddp_reference, tmp_path, cli_env):
    run_dir = tmp_path / "run"
    # Every rank dies at its 25th step (the last checkpoint was at step 21, mid-epoch 2).
    killed = run_dlx(
        "train", *RESUME, f"hydra.run.dir={run_dir}", env={**cli_env, "DLX_FAULT": "step:25"}
    )
    assert killed.returncode == 1
    assert "was killed by signal 9" in killed.stderr and killed.stderr.count("\n") == 1
    resumed = run_dlx(
        "train", *RESUME, f"hydra.run.dir={run_dir}", "trainer.resume=auto", env=cli_env
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "at epoch 2, batch 3 (step 21)" in resumed.stdout
    assert_same(run_dir, ddp_reference)


@pytest.mark.slow
def test_ddp_resume_continues_to_more_epochs(ddp_reference, tmp_path, cli_env):
    run_dir = tmp_path / "run"
    short = [a for a in RESUME if not a.startswith("trainer.max_epochs")]
    first = run_dlx("train", *short, "trainer.max_epochs=2", f"hydra.run.dir={run_dir}")
    assert first.returncode == 0, first.stderr
    more = run_dlx("train", *RESUME, f"hydra.run.dir={run_dir}", "trainer.resume=auto", env=cli_env)
    assert more.returncode == 0, more.stderr
    assert "resumed from" in more.stdout and "epoch 1/3" not in more.stdout
    assert_same(run_dir, ddp_reference)


@pytest.mark.slow
def test_sigterm_stops_all_ranks_with_one_checkpoint(tmp_path, cli_env):
    run_dir = tmp_path / "run"
    args = [*DDP, "trainer.accelerator=cpu", "trainer.batch_size=8", "trainer.progress=false"]
    code, err, took = sigterm_during_training(
        [DLX, "train", *args, "trainer.max_epochs=100000", f"hydra.run.dir={run_dir}"],
        cli_env,
    )
    assert code == 128 + signal.SIGTERM
    assert took < 15
    assert err.startswith("error: stopped by SIGTERM") and err.count("\n") == 1
    assert "trainer.devices=2" in err and "trainer.resume=auto" in err
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["epoch"] >= 2 and len(ckpt["ranks"]) == 2
    out = run_dlx(
        "train",
        *args,
        f"trainer.max_epochs={ckpt['epoch'] + 1}",
        f"hydra.run.dir={run_dir}",
        "trainer.resume=auto",
        env=cli_env,
    )
    assert out.returncode == 0, out.stderr
    assert metrics(run_dir)["epochs"] == ckpt["epoch"] + 1


@pytest.mark.slow
def test_torchrun_makes_one_run_dir_and_matches_devices(tmp_path, cli_env):
    spawned = tmp_path / "spawned"
    out = run_dlx("train", *ARGS, *DDP, f"hydra.run.dir={spawned}", env=cli_env)
    assert out.returncode == 0, out.stderr
    torchrun = subprocess.run(
        [str(BIN / "torchrun"), "--nproc_per_node=2", "-m", "dlx", "train", *ARGS],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert torchrun.returncode == 0, torchrun.stderr
    runs = [p for p in (tmp_path / "outputs" / "train").glob("*/*") if p.is_dir()]
    assert len(runs) == 1, runs
    assert (runs[0] / ".hydra").is_dir() and (runs[0] / "train.log").is_file()
    assert torchrun.stdout.count("epoch 1/3") == 1
    a, b = metrics(spawned), metrics(runs[0])
    for key in ("train/loss", "test/loss", "test/acc"):
        assert b[key] == pytest.approx(a[key], rel=1e-6), key


@pytest.mark.slow
def test_a_diverged_ddp_run_stops_every_rank_in_one_line(tmp_path, cli_env):
    out = run_dlx(
        "train",
        *DDP,
        "trainer.accelerator=cpu",
        "optimizer=sgd",
        "optimizer.lr=1e12",
        "trainer.progress=false",
        f"hydra.run.dir={tmp_path / 'run'}",
        env=cli_env,
        timeout=120,
    )
    assert out.returncode == 1
    assert (
        out.stderr.startswith("error: loss became nan at epoch 1") and out.stderr.count("\n") == 1
    )


def spawned_workers(pid: int) -> list[int]:
    """The DDP worker processes of `dlx train` process `pid`, in start order (rank order)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    found = [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    return sorted(found)


@pytest.mark.slow
@pytest.mark.parametrize("victim", [0, 1], ids=["rank0", "rank1"])
def test_a_worker_killed_mid_run_is_one_line(tmp_path, cli_env, victim):
    # The survivor's collective fails ("Connection reset by peer"): its traceback says
    # nothing the launcher's line does not, and is not shown.
    cmd = [DLX, "train", *DDP, "trainer.accelerator=cpu", "trainer.batch_size=8"]
    cmd += ["trainer.max_epochs=100000", "trainer.progress=false", "viz.enabled=false"]
    proc = subprocess.Popen(
        [*cmd, f"hydra.run.dir={tmp_path / 'run'}"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # training is under way
            if line.startswith("epoch 1/"):
                break
        workers = spawned_workers(proc.pid)
        assert len(workers) == 2
        os.kill(workers[victim], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert err.startswith("error: trainer.devices=2: worker rank ") and err.count("\n") == 1, err
    assert "was killed by signal 9" in err and "Traceback" not in err


def _stop_a_worker(tmp_path: Path, cli_env: dict[str, str]) -> tuple[subprocess.Popen, float]:
    """A 2-process run whose rank 1 gets SIGSTOP once training is under way."""
    import time

    proc = subprocess.Popen(
        [DLX, "train", "trainer.devices=2", "trainer.max_epochs=100000", "trainer.progress=false",
         "trainer.stall_timeout_s=5", "viz.enabled=false", f"hydra.run.dir={tmp_path / 'run'}"],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("epoch 2/"):
            break
    workers = subprocess.run(
        ["pgrep", "-f", "multiprocessing.spawn", "-P", str(proc.pid)],
        capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert len(workers) == 2, workers
    os.kill(int(sorted(workers, key=int)[1]), signal.SIGSTOP)  # the later-started: rank 1
    return proc, time.monotonic()


@pytest.mark.slow
def test_a_stopped_worker_ends_the_run_within_the_stall_timeout(tmp_path, cli_env):
    import time

    proc, stopped_at = _stop_a_worker(tmp_path, cli_env)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    took = time.monotonic() - stopped_at
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 1, err
    assert len(lines) == 1 and "worker rank 1 made no progress" in lines[0], err
    assert "stopped (SIGSTOP)" in lines[0] and 5 <= took < 20


@pytest.mark.slow
def test_sigterm_during_a_stall_ends_the_run_at_once(tmp_path, cli_env):
    import time

    proc, _ = _stop_a_worker(tmp_path, cli_env)
    try:
        time.sleep(3)  # rank 0 is blocked in an all-reduce by now
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert time.monotonic() - sent < 5
    assert "stopped by SIGTERM; worker rank 1 made no progress" in err
