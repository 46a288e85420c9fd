"""`dlx eval`: a checkpoint on its test or val split, in its own run dir; bad ones refused."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import run_dlx
from tests.runs import resave


@pytest.fixture(scope="module")
def trained(tmp_path_factory, device):
    run_dir = tmp_path_factory.mktemp("trained")
    out = run_dlx(
        "train",
        f"trainer.accelerator={device}",
        "trainer.max_epochs=3",
        "dataset.val_split=0.2",
        "model.hidden=[32]",
        f"hydra.run.dir={run_dir}",
        "trainer.progress=false",
    )
    assert out.returncode == 0, out.stderr
    return run_dir


def test_eval_reproduces_the_runs_test_metrics(trained, tmp_path, cli_env, device):
    out = run_dlx(
        "eval",
        f"ckpt={trained / 'checkpoints' / 'last.pt'}",
        f"trainer.accelerator={device}",
        f"hydra.run.dir={tmp_path / 'ev'}",
        env=cli_env,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    ref = json.loads((trained / "metrics.json").read_text())
    assert got["test/acc"] == pytest.approx(ref["test/acc"])
    assert got["test/loss"] == pytest.approx(ref["test/loss"], rel=1e-5)
    assert got["samples"] == 360 and got["checkpoint_epoch"] == 3


def test_eval_on_val_split_of_best(trained, tmp_path, cli_env):
    # On the CPU, whichever device trained it (a CUDA checkpoint's tensors are mapped over).
    best = torch.load(trained / "checkpoints" / "best.pt", weights_only=True, map_location="cpu")
    out = run_dlx(
        "eval",
        f"ckpt={trained / 'checkpoints' / 'best.pt'}",
        "trainer.accelerator=cpu",
        "split=val",
        f"hydra.run.dir={tmp_path / 'ev'}",
        env=cli_env,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    row = best["state"]["rows"][best["epoch"] - 1]
    assert got["val/acc"] == pytest.approx(row["val/acc"])


def test_eval_on_the_train_split(trained, tmp_path, cli_env):
    out = run_dlx(
        "eval",
        f"ckpt={trained}",
        "split=train",
        f"hydra.run.dir={tmp_path / 'ev'}",
        env=cli_env,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    # digits: 1437 train samples, 20% of them held out for val: the 1149 it trained on
    assert got["samples"] == 1149 and "test/acc" not in got
    assert 0.5 < got["train/acc"] <= 1.0 and got["train/loss"] > 0
    assert "train/acc" in out.stdout


def test_eval_writes_its_own_run_dir(trained, tmp_path, cli_env):
    out = run_dlx("eval", f"ckpt={trained / 'checkpoints' / 'last.pt'}", env=cli_env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert len(list((tmp_path / "outputs").glob("eval/*/*/metrics.json"))) == 1


@pytest.mark.parametrize(
    "args, words",
    [
        (["dataset.colour=red"], "dataset.colour is not an option"),
        (
            ["dataset=mnist", "dataset.download=false", "dataset.root=/nonexistent"],
            "MNIST files missing",
        ),
        (["split=nope"], "split=nope: the data has no such split"),
        (["trainer.max_epochs=3"], "does not apply to evaluation"),
        (["colour=red"], "Key 'colour' not in 'EvalConfig'"),
    ],
)
def test_eval_refuses_bad_requests(trained, tmp_path, cli_env, args, words):
    out = run_dlx(
        "eval",
        f"ckpt={trained / 'checkpoints' / 'last.pt'}",
        *args,
        f"hydra.run.dir={tmp_path / 'ev'}",
        env=cli_env,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and words in out.stderr
    assert out.stderr.count("\n") == 1
    assert not (tmp_path / "ev" / "metrics.json").exists()


@pytest.mark.parametrize(
    "where", ["/proc/dlx-eval", "{tmp}/a_file/ev"], ids=["proc", "under-a-file"]
)
def test_eval_refuses_a_run_dir_it_cannot_create(trained, tmp_path, cli_env, where):
    (tmp_path / "a_file").write_text("x")
    run_dir = where.format(tmp=tmp_path)
    out = run_dlx(
        "eval",
        f"ckpt={trained / 'checkpoints' / 'last.pt'}",
        f"hydra.run.dir={run_dir}",
        env=cli_env,
    )
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: cannot write the run dir {run_dir}: ")
    assert "is not a writable folder" in out.stderr and out.stderr.count("\n") == 1


def test_eval_refuses_a_checkpoint_that_does_not_fit(trained, tmp_path, cli_env):
    # A checkpoint whose stored config says hidden=[64] but whose weights are hidden=[32].
    ckpt = torch.load(trained / "checkpoints" / "last.pt", weights_only=True)
    ckpt["config"]["model"]["hidden"] = [64]
    resave(ckpt, tmp_path / "mismatch.pt")
    out = run_dlx("eval", f"ckpt={tmp_path / 'mismatch.pt'}", env=cli_env, cwd=tmp_path)
    assert out.returncode == 2
    assert "does not fit this model and data" in out.stderr and "(32, 64)" in out.stderr


def test_eval_never_runs_a_planted_payload(tmp_path, cli_env):
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'PWNED'}",))

    torch.save({"model": {}, "config": {}, "x": Evil()}, tmp_path / "evil.pt")
    out = run_dlx("eval", f"ckpt={tmp_path / 'evil.pt'}", env=cli_env, cwd=tmp_path)
    assert out.returncode == 2 and "holds Python objects" in out.stderr
    assert not (tmp_path / "PWNED").exists()
