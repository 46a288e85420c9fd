"""`dlx viz run_dir=...`: the figures again, from a finished run's files only."""

from __future__ import annotations

import pytest

from tests.conftest import run_dlx
from tests.runs import png_size, train

SMOKE = ("dataset=digits", "trainer.max_epochs=2", "trainer.limit_train_batches=4")


def test_redraws_the_same_figures_from_the_run_dir(tmp_path, cli_env, device):
    # Trained on the device; `dlx viz` redraws from its files (a CUDA run's, on any machine).
    run_dir, _ = train(tmp_path, *SMOKE, "model=cnn", f"trainer.accelerator={device}")
    drawn = {p.name: png_size(p) for p in (run_dir / "plots").glob("*.png")}
    for png in (run_dir / "plots").glob("*.png"):
        png.unlink()
    out = run_dlx("viz", f"run_dir={run_dir}", env=cli_env)
    assert out.returncode == 0, out.stderr
    assert {p.name: png_size(p) for p in (run_dir / "plots").glob("*.png")} == drawn
    assert set(drawn) == {
        "learning_curves.png",
        "confusion_matrix.png",
        "predictions.png",
        "feature_maps_1.png",
        "feature_maps_2.png",
    }
    assert f"5 figures in {run_dir / 'plots'}" in out.stdout


def test_options_and_a_staged_run(tmp_path, cli_env):
    run_dir, _ = train(
        tmp_path,
        *SMOKE,
        "viz.enabled=false",
        "+stages=[{name: a, overrides: {dataset: {classes: [0, 1]}}},"
        "{name: b, overrides: {dataset: {classes: [2, 3]}}}]",
    )
    args = [f"run_dir={run_dir}", "viz.figures=[predictions]", "viz.samples=8", "ckpt=best"]
    out = run_dlx("viz", *args, env=cli_env)
    assert out.returncode == 0, out.stderr
    paths = sorted(run_dir.glob("*/plots/*.png"))
    assert paths == [run_dir / "1_a" / "plots" / "predictions.png",
                     run_dir / "2_b" / "plots" / "predictions.png"]  # fmt: skip
    assert png_size(paths[0]) == (800, 150)  # 8 samples: one row of 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["viz.figures=[nope]"], "no figure named nope"),
        (["colour=red"], "Key 'colour' not in 'VizCommandConfig'"),
        ([], "run_dir has no value and needs one: add run_dir=<value>"),
    ],
)
def test_bad_arguments(tmp_path, cli_env, args, message):
    out = run_dlx("viz", *([f"run_dir={tmp_path}", *args] if args else []), env=cli_env)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and message in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1


def test_not_a_run_dir_is_one_line(tmp_path, cli_env):
    out = run_dlx("viz", f"run_dir={tmp_path}", env=cli_env)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1
    assert "not a dlx run dir" in out.stderr
