"""A multirun's monitored metric against each swept parameter."""

from __future__ import annotations

import json

import pytest
import yaml

from dlx.core.errors import ConfigError
from dlx.viz.sweep import plot_sweep, sweep_rows
from tests.runs import pixels, png_size


def test_plot_sweep_from_rows_a_callback_collected(tmp_path):
    rows = [
        {"overrides": {"optimizer.lr": "0.001", "model": "mlp"}, "value": 0.91, "status": "done"},
        {"overrides": {"optimizer.lr": "0.01", "model": "mlp"}, "value": 0.95, "status": "done"},
        {"overrides": {"optimizer.lr": "0.1", "model": "cnn"}, "value": 0.42, "status": "done"},
        # Hydra's list form, and a failed job
        {"overrides": ["optimizer.lr=1.0", "model=cnn"], "value": None, "status": "failed"},
    ]
    path = plot_sweep(tmp_path, rows, metric="val/acc")
    assert path == tmp_path / "plots" / "sweep.png"
    assert png_size(path) == (1000, 400)  # two swept parameters: two panels
    image = pixels(path).astype(int)
    assert ((image[..., 0] > 200) & (image[..., 1] < 50) & (image[..., 2] < 50)).any()  # failed


def test_learning_rates_a_decade_apart_get_a_log_axis_that_says_so(tmp_path, monkeypatch):
    import dlx.viz.style

    drawn = []
    save = dlx.viz.style.save_png
    monkeypatch.setattr(
        dlx.viz.style,
        "save_png",
        lambda fig, path, dpi=100: drawn.append(fig) or save(fig, path, dpi),
    )
    lrs = ["0.001", "0.003", "0.01", "0.03"]  # a decade and a half: once a linear axis
    rows = [
        {"overrides": [f"optimizer.lr={lr}", f"trainer.batch_size={bs}", f"model.dropout={p}"],
         "value": 0.9, "status": "done"}
        for lr, bs, p in zip(lrs, ["16", "32", "128", "256"], ["0.0", "0.1", "0.2", "0.3"],
                             strict=True)
    ]  # fmt: skip
    plot_sweep(tmp_path, rows, metric="val/acc")
    lr, batch, dropout = drawn[0].axes
    assert lr.get_xscale() == "log" and lr.get_xlabel() == "optimizer.lr (log scale)"
    assert batch.get_xscale() == "log"  # 16 .. 256: powers of two, log-spaced too
    # 0 is not positive, and 0.1 .. 0.3 spans less than a decade: linear, labelled as is
    assert dropout.get_xscale() == "linear" and dropout.get_xlabel() == "model.dropout"
    plot_sweep(tmp_path, rows[1:], metric="val/acc")  # 0.003 .. 0.03: still a decade
    assert drawn[1].axes[0].get_xscale() == "log"


def test_nothing_to_plot_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no jobs"):
        plot_sweep(tmp_path, [])


def make_job(sweep, num, overrides, metrics=None, status=None):
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))
    if status is not None:
        (job / "job_status.json").write_text(json.dumps(status))


def test_rows_from_the_job_folders_of_a_multirun(tmp_path):
    make_job(tmp_path, 0, ["optimizer.lr=0.001"], {"monitor": "train/acc", "train/acc": 0.8})
    make_job(tmp_path, 1, ["optimizer.lr=0.01"], {"monitor": "train/acc", "train/acc": 0.9})
    make_job(tmp_path, 2, ["optimizer.lr=10"])  # died before metrics.json
    make_job(
        tmp_path,
        10,
        ["optimizer.lr=0.1"],
        status={"overrides": ["optimizer.lr=0.1"], "status": "done", "monitor": "train/acc",
                "value": 0.7},
    )  # fmt: skip
    rows = sweep_rows(tmp_path)
    assert [r["value"] for r in rows] == [0.8, 0.9, None, 0.7]  # job order 0, 1, 2, 10
    assert [r["status"] for r in rows] == ["done", "done", "failed", "done"]
    assert rows[0]["monitor"] == "train/acc"
    assert png_size(plot_sweep(tmp_path, rows)) == (500, 400)
