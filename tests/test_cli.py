"""The real `dlx` entry point, end to end, in subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from tests.conftest import run_dlx

CONFIGS = Path(__import__("dlx.configs", fromlist=["x"]).__path__[0])


def test_help_lists_commands_without_importing_torch():
    code = (
        "import sys; from dlx.cli import main; main(['--help']); "
        "assert 'torch' not in sys.modules, 'dlx --help imported torch'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for command in ("train", "info", "data", "predict", "export", "runs"):
        assert f"  {command} " in out.stdout


def test_only_the_console_script_freezes_the_heap_for_a_fast_exit(tmp_path):
    # main(argv) from Python (tests, notebooks) leaves the collector alone; main() as the
    # `dlx` process freezes what is left so that Python's exit does not rescan it.
    code = (
        "import gc, sys\n"
        "from dlx.cli import main\n"
        "def counted(argv):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    return gc.get_freeze_count()\n"
        f"called = counted(['viz', 'run_dir={tmp_path}/none'])\n"
        f"sys.argv = ['dlx', 'viz', 'run_dir={tmp_path}/none']\n"
        "print(called, counted(None))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    called, as_process = map(int, out.stdout.split())
    assert called == 0 and as_process > 1000


def test_bare_dlx_prints_usage():
    out = run_dlx()
    assert out.returncode == 0
    assert "commands:" in out.stdout and "train" in out.stdout


def test_unknown_command_exits_2_and_lists_commands():
    out = run_dlx("trian")
    assert out.returncode == 2
    assert "unknown command 'trian'" in out.stderr
    for name in ("train", "eval", "info", "data"):
        assert name in out.stderr.split("valid commands:")[1]


def test_train_help_shows_groups_and_documents_settings(cli_env):
    out = run_dlx("train", "--help", env=cli_env)
    assert out.returncode == 0, out.stderr
    groups = out.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    for group in ("dataset", "model", "optimizer", "debug", "callbacks"):  # every option file
        options = sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))
        assert f"{group}: {', '.join(options)}" in groups
    # the schema groups type the others; they are not options to pick
    assert "schema" not in groups
    settings = out.stdout.split("== Settings")[1]  # each key with what it does
    assert "  trainer.max_epochs: 20  # epochs to train" in settings
    assert "  dataset.val_split: 0.0  # " in settings and "  model.freeze: []  # " in settings
    assert "  sweep.resume: false  # with -m and hydra.sweep.dir=" in settings


def test_train_cfg_job_prints_composed_config(cli_env):
    out = run_dlx("train", "--cfg", "job", "model.hidden=[32,16]", env=cli_env)
    assert out.returncode == 0, out.stderr
    assert "_target_: dlx.models.mlp.MLP" in out.stdout
    assert "- 32\n  - 16" in out.stdout
    assert "seed: 2017" in out.stdout


def test_bare_train_reaches_095_on_digits_from_any_folder(cli_env, tmp_path):
    run_dir = tmp_path / "run"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    t0 = time.perf_counter()
    out = run_dlx("train", f"hydra.run.dir={run_dir}", env=cli_env, cwd=elsewhere)
    elapsed = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/acc"] >= 0.95
    assert metrics["num_params"] == 64 * 784 + 784 + 784 * 10 + 10
    for key in (
        "train/loss",
        "train/acc",
        "test/loss",
        "epochs",
        "wall_time_s",
        "train_samples_per_s",
    ):
        assert key in metrics
    assert metrics["epochs"] == 20 and len(metrics["epoch_time_s"]) == 20
    # process start to the end of the first step: imports, config and data, all included
    assert 0 < metrics["startup_s"] < elapsed
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train/loss,train/acc") and len(rows) == 21
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 20 and ckpt["config"]["seed"] == 2017
    assert "epoch 20/20" in out.stdout
    assert not list(run_dir.rglob("*.tmp")), "a temp file was left behind"
    assert not (elsewhere / "outputs").exists()  # the run went where hydra.run.dir said


def test_default_run_dir_is_under_outputs(cli_env, tmp_path):
    out = run_dlx("train", "debug=smoke", env=cli_env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    runs = list((tmp_path / "outputs" / "train").glob("*/*/metrics.json"))
    assert len(runs) == 1


def test_train_mnist_from_fixture(cli_env, mnist_root, tmp_path):
    run_dir = tmp_path / "run"
    out = run_dlx(
        "train",
        "dataset=mnist",
        f"dataset.root={mnist_root}",
        "dataset.download=false",
        "dataset.val_split=0.25",
        "debug=smoke",
        "model.hidden=[16]",
        f"hydra.run.dir={run_dir}",
        env=cli_env,
    )
    assert out.returncode == 0, out.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["num_params"] == 784 * 16 + 16 + 16 * 10 + 10
    assert {"val/loss", "val/acc", "test/acc"} <= set(metrics)
    assert "150 train / 50 val / 100 test" in out.stdout


def test_bad_type_fails_with_one_clear_line(cli_env, tmp_path):
    out = run_dlx("train", "trainer.max_epochs=abc", env=cli_env, cwd=tmp_path)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "trainer.max_epochs=abc" in lines[0] and "Traceback" not in out.stderr
    assert not (tmp_path / "outputs").exists()


def test_missing_mnist_names_path_and_fix(cli_env, tmp_path):
    out = run_dlx(
        "train",
        "dataset=mnist",
        f"dataset.root={tmp_path / 'empty'}",
        "dataset.download=false",
        f"hydra.run.dir={tmp_path / 'run'}",
        env=cli_env,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: MNIST files missing in ")
    assert "DLX_DATA_DIR" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_multirun_passes_through_to_hydra(cli_env, tmp_path):
    sweep = tmp_path / "sweep"
    out = run_dlx(
        "train",
        "-m",
        "optimizer.lr=0.001,0.01",
        "debug=smoke",
        f"hydra.sweep.dir={sweep}",
        env=cli_env,
    )
    assert out.returncode == 0, out.stderr
    runs = sorted(sweep.glob("*/metrics.json"))
    assert len(runs) == 2
    lrs = {OmegaConf.load(r.parent / ".hydra" / "config.yaml").optimizer.lr for r in runs}
    assert lrs == {0.001, 0.01}


def test_info_prints_keras_style_summary_without_data(cli_env, tmp_path):
    out = run_dlx("info", "model=mlp", "dataset=mnist", env=cli_env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "623,290" in out.stdout
    assert "Trainable params: 623,290" in out.stdout
    assert "Non-trainable params: 0" in out.stdout
    assert "(None, 784)" in out.stdout
    assert not any(Path(tmp_path).iterdir())  # nothing written, no data needed


def test_info_bad_override_is_one_line(cli_env):
    out = run_dlx("info", "model=nope", env=cli_env)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "Could not find 'model/nope'" in out.stderr and "mlp" in out.stderr
