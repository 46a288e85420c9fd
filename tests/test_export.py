"""`dlx export`: a checkpoint's model as ONNX (checked with onnxruntime), TorchScript or
torch.export's .pt2, with its metadata; `dlx predict` takes the .onnx."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from dlx.core.data import to_input
from dlx.core.roots import PredictConfig
from dlx.engine.checkpoint import CheckpointError
from dlx.export import export_model
from dlx.predict import run_predict
from dlx.predictors import load_predictor
from dlx.trained import load_trained, sample_inputs
from tests.conftest import run_dlx
from tests.runs import train
from tests.test_predict import Evil, digit_pngs, read_csv, text_files

TINY = {
    "mlp": ("model.hidden=[16]", "dataset.limit=300"),
    "cnn": ("model=cnn", "model.filters=[4]", "model.hidden=[8]", "dataset.limit=300"),
    # recurrent dropout: trained by its own autograd Function, evaluated by torch._VF.lstm
    "lstm": (
        "model=lstm",
        "model.embed_dim=8",
        "model.hidden=8",
        "model.recurrent_dropout=0.2",
        "dataset.maxlen=12",
    ),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for name, overrides in TINY.items():
        root = tmp_path_factory.mktemp(name)
        data: tuple[str, ...] = ()
        if name == "lstm":  # 100 test texts: the parity check's 100 samples
            train_csv, test_csv, _ = text_files(root, 100, 100)
            data = ("dataset=text", f"dataset.path={train_csv}", f"dataset.test_path={test_csv}")
        out[name], _ = train(root, *data, *overrides, "trainer.max_epochs=1", "viz.enabled=false")
    return out


@pytest.mark.parametrize("name", list(TINY))
def test_onnx_matches_the_checkpoint_and_predicts_the_same_classes(name, runs, tmp_path):
    trained = load_trained(str(runs[name]))
    meta = export_model(trained, "onnx", tmp_path / "model.onnx", samples=100)
    assert meta["parity"]["samples"] == 100 and meta["parity"]["inputs"] == "the test split"
    assert meta["parity"]["max_abs_diff"] < 1e-4
    # checked again here, on the file as written, with a batch size not used to export it
    stored, _ = sample_inputs(trained, 100)
    x = to_input(stored, trained.description["scale"])
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    got = session.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = trained.model(x).numpy()
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-4
    on_disk = json.loads((tmp_path / "model.onnx.json").read_text())
    assert on_disk["input"]["shape"] == ["batch", *trained.description["input_shape"]]
    assert on_disk["input"]["dtype"] == ("int64" if name == "lstm" else "float32")
    onnx = load_predictor(str(tmp_path / "model.onnx"), None).outputs(stored, 32)
    torch_ = load_predictor(str(runs[name]), "cpu").outputs(stored, 32)
    if name == "lstm":  # two classes, one logit
        assert ((onnx > 0) == (torch_ > 0)).all()
    else:
        assert (onnx.argmax(1) == torch_.argmax(1)).all()


@pytest.mark.parametrize("fmt", ["torchscript", "pt2"])
@pytest.mark.parametrize("name", ["mlp", "lstm"])
def test_torchscript_and_pt2_match_the_checkpoint(fmt, name, runs, tmp_path):
    path = tmp_path / f"model.{fmt}"
    meta = export_model(load_trained(str(runs[name])), fmt, path, samples=100)
    assert meta["parity"]["max_abs_diff"] < 1e-4 and path.stat().st_size > 1000
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # written atomically


def test_without_its_data_the_check_runs_on_random_inputs(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["lstm"], run)
    for f in runs["lstm"].parent.glob("*.csv"):
        shutil.move(f, tmp_path / f.name)  # the data set's files are gone
    try:
        meta = export_model(load_trained(str(run)), "torchscript", tmp_path / "m.pt", samples=30)
    finally:
        for f in tmp_path.glob("*.csv"):
            shutil.move(f, runs["lstm"].parent / f.name)
    assert meta["parity"]["inputs"].startswith("random inputs") and meta["parity"]["samples"] == 30
    assert meta["parity"]["max_abs_diff"] < 1e-4


def test_export_then_predict_on_the_onnx_end_to_end(runs, tmp_path, cli_env):
    out = run_dlx("export", f"ckpt={runs['cnn']}", f"hydra.run.dir={tmp_path / 'ex'}",
                  env=cli_env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "largest difference from the checkpoint" in out.stdout
    assert (tmp_path / "ex" / "model.onnx").is_file()
    from dlx.data.digits import Digits

    test = Digits(limit=12).load().test
    digit_pngs(tmp_path / "pngs", test.x, test.y)
    onnx = tmp_path / "ex" / "model.onnx"
    run_predict(PredictConfig(ckpt=str(onnx), input=str(tmp_path / "pngs")), tmp_path / "p")
    rows = read_csv(tmp_path / "p" / "predictions.csv")
    with torch.no_grad():
        own = load_trained(str(runs["cnn"])).model(test.x.float() / 16).argmax(1).tolist()
    assert [int(r["class_id"]) for r in rows] == own


def test_export_refuses_a_payload_and_a_pt2_in_one_line(tmp_path, cli_env):
    marker = tmp_path / "PWNED"
    torch.save({"model": {}, "config": {}, "history": [Evil(marker)]}, tmp_path / "evil.pt")
    out = run_dlx("export", f"ckpt={tmp_path / 'evil.pt'}", f"hydra.run.dir={tmp_path / 'e'}",
                  env=cli_env)  # fmt: skip
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert "holds Python objects (posix.system)" in lines[0] and not marker.exists()
    assert not (tmp_path / "e").exists()  # a refused request leaves no run dir
    (tmp_path / "m.pt2").write_bytes(b"PK")
    with pytest.raises(CheckpointError, match=r"does not load torch.export \(.pt2\)"):
        load_trained(str(tmp_path / "m.pt2"))
