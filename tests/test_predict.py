"""`dlx predict`: new image files and texts through a trained model, preprocessed as in
training from what the checkpoint saved; what it cannot use is refused in one line."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlx.core.errors import DlxError
from dlx.core.roots import PredictConfig
from dlx.data.digits import Digits
from dlx.engine.checkpoint import CheckpointError, load_checkpoint
from dlx.predict import run_predict
from dlx.trained import load_trained
from tests.conftest import run_dlx
from tests.runs import resave, train

MODES = ("L", "RGB", "RGBA", "P")  # each decodes back to the same grey levels


class Evil:
    """Unpickling this runs `touch <marker>`: the marker says whether a payload ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def digit_pngs(folder: Path, x: torch.Tensor, y: torch.Tensor) -> list[int]:
    """The 8x8 digits (0..16) as 0..255 PNG files in several colour modes; their labels."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(x):
        grey = np.rint(img[0].numpy().astype(np.float64) * 255 / 16).astype(np.uint8)
        Image.fromarray(grey, "L").convert(MODES[i % len(MODES)]).save(folder / f"{i:02d}.png")
    return [int(v) for v in y]


def text_files(root: Path, n_train: int, n_test: int) -> tuple[Path, Path, list[str]]:
    """train.csv and test.csv of two classes told apart by some of their words (and not
    always: the accuracy is not 1); the test texts."""
    rng = np.random.default_rng(0)
    words = {"pos": ["good", "great", "fine", "lovely", "superb"],
             "neg": ["bad", "awful", "dull", "poor", "weak"]}  # fmt: skip
    filler = ["the", "film", "was", "a", "and", "plot", "actors", "story", "it", "is", "of"]
    paths, tests = [], []
    for name, n in (("train.csv", n_train), ("test.csv", n_test)):
        with open(root / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "label"])
            for _ in range(n):
                label = str(rng.choice(["pos", "neg"]))
                picked = [*rng.choice(filler, 5), rng.choice(words[label]),
                          rng.choice(words["pos"] + words["neg"])]  # fmt: skip
                text = " ".join(str(t) for t in rng.permutation(picked))
                w.writerow([text, label])
                if name == "test.csv":
                    tests.append(text)
        paths.append(root / name)
    return paths[0], paths[1], tests


def opts(**values) -> PredictConfig:
    o = PredictConfig(**values)
    o.check()
    return o


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    run_dir, _ = train(tmp_path_factory.mktemp("digits"), "trainer.max_epochs=2",
                       "model.hidden=[32]", "viz.enabled=false")  # fmt: skip
    return run_dir


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("text")
    train_csv, test_csv, texts = text_files(root, 200, 50)
    run_dir, _ = train(
        root, "dataset=text", f"dataset.path={train_csv}", f"dataset.test_path={test_csv}",
        "model=embedding_bag", "model.dim=8", "trainer.max_epochs=5", "optimizer.lr=0.01",
        "viz.enabled=false",
    )  # fmt: skip
    return run_dir, texts


def eval_acc(run_dir: Path, tmp_path: Path, env: dict[str, str], *args: str) -> float:
    out = run_dlx("eval", f"ckpt={run_dir}", *args, f"hydra.run.dir={tmp_path / 'ev'}", env=env)
    assert out.returncode == 0, out.stderr
    return json.loads((tmp_path / "ev" / "metrics.json").read_text())["test/acc"]


def test_predict_on_digit_pngs_scores_what_eval_reports(digits_run, tmp_path, cli_env):
    test = Digits(limit=50).load().test  # the 50 `dlx eval dataset.limit=50` scores
    labels = digit_pngs(tmp_path / "pngs", test.x, test.y)
    out = run_dlx("predict", f"ckpt={digits_run}", f"input={tmp_path / 'pngs'}", "top_k=2",
                  f"hydra.run.dir={tmp_path / 'pred'}", env=cli_env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "predicted" in out.stdout and "30 more in predictions.csv" in out.stdout
    rows = read_csv(tmp_path / "pred" / "predictions.csv")
    assert [Path(r["input"]).name for r in rows] == [f"{i:02d}.png" for i in range(50)]
    assert set(rows[0]) == {"input", "class_id", "predicted", "probability", "top2",
                            "top2_probability"}  # fmt: skip
    predicted = [int(r["predicted"]) for r in rows]
    # the model's own classes for the stored samples: the same, file by file
    trained = load_trained(str(digits_run))
    with torch.no_grad():
        own = trained.model(test.x.float() / 16).argmax(1).tolist()
    assert predicted == own
    acc = float(np.mean(np.array(predicted) == np.array(labels)))
    assert acc == pytest.approx(eval_acc(digits_run, tmp_path, cli_env, "dataset.limit=50"))


def test_predict_on_a_file_of_lines_scores_what_eval_reports(text_run, tmp_path, cli_env):
    run_dir, texts = text_run
    (tmp_path / "lines.txt").write_text("\n".join(texts) + "\n")
    run_predict(opts(ckpt=str(run_dir), input=str(tmp_path / "lines.txt")), tmp_path / "p")
    rows = read_csv(tmp_path / "p" / "predictions.csv")
    assert len(rows) == 50 and rows[3]["input"].endswith("lines.txt:4")
    labels = [r["label"] for r in read_csv(run_dir.parent / "test.csv")]
    acc = float(np.mean([r["predicted"] == label for r, label in zip(rows, labels, strict=True)]))
    assert 0.5 < acc < 1.0  # learned, and not so easy that any reading scores 1
    assert acc == pytest.approx(eval_acc(run_dir, tmp_path, cli_env))


def test_text_from_a_string_and_from_a_csv_column(text_run, tmp_path):
    run_dir, texts = text_run
    run_predict(opts(ckpt=str(run_dir), input=str(run_dir.parent / "test.csv")), tmp_path / "c")
    run_predict(opts(ckpt=str(run_dir), text=texts[7]), tmp_path / "s")
    from_csv = read_csv(tmp_path / "c" / "predictions.csv")
    one = read_csv(tmp_path / "s" / "predictions.csv")
    assert from_csv[7]["input"].endswith("test.csv:9")  # line 9: the header is line 1
    assert one[0]["input"] == "text" and one[0]["predicted"] == from_csv[7]["predicted"]
    assert one[0]["probability"] == from_csv[7]["probability"]


def test_the_vocabulary_is_saved_with_the_run_and_survives_the_cache(text_run):
    run_dir, _ = text_run
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")["data"]
    prep = saved["preprocessing"]
    assert prep["kind"] == "text" and prep["maxlen"] == 80 and "superb" in prep["vocab"]
    assert saved["class_names"] == ["neg", "pos"]
    from dlx.data.text_files import TextFiles

    cache = run_dir.parent / "cache"
    first = TextFiles(path=run_dir.parent / "train.csv", test_size=0.2, cache_dir=cache)
    again = TextFiles(path=run_dir.parent / "train.csv", test_size=0.2, cache_dir=cache)
    assert first.load().preprocessing == again.load().preprocessing and again.cache_hit


def test_upscaled_photos_are_resized_like_the_data_set(digits_run, tmp_path):
    test = Digits(limit=20).load().test
    for i, img in enumerate(test.x):
        grey = np.rint(img[0].numpy().astype(np.float64) * 255 / 16).astype(np.uint8)
        Image.fromarray(grey).resize((64, 64), Image.Resampling.NEAREST).convert("RGB").save(
            tmp_path / f"{i:02d}.jpg", quality=95
        )
    run_predict(opts(ckpt=str(digits_run), input=str(tmp_path / "*.jpg")), tmp_path / "p")
    rows = read_csv(tmp_path / "p" / "predictions.csv")
    trained = load_trained(str(digits_run))
    with torch.no_grad():
        own = trained.model(test.x.float() / 16).argmax(1).tolist()
    agree = np.mean([int(r["predicted"]) == c for r, c in zip(rows, own, strict=True)])
    assert len(rows) == 20 and agree >= 0.7  # blurred by the resize, mostly the same


def test_a_checkpoint_without_the_description_falls_back_to_its_config(digits_run, tmp_path):
    ckpt = torch.load(digits_run / "checkpoints" / "last.pt", weights_only=True)
    del ckpt["data"]
    resave(ckpt, tmp_path / "old.pt")
    assert load_trained(str(tmp_path / "old.pt")).description["preprocessing"]["max_value"] == 16
    ckpt["config"]["dataset"] = {"_target_": "dlx.data.mnist.MNIST", "root": str(tmp_path),
                                 "download": False, "cache_dir": None}  # fmt: skip
    resave(ckpt, tmp_path / "gone.pt")
    with pytest.raises(CheckpointError, match=r"before dlx stored a run's preprocessing.*retrain"):
        load_trained(str(tmp_path / "gone.pt"))


def test_the_description_is_checked_and_checksummed(digits_run, tmp_path):
    ckpt = torch.load(digits_run / "checkpoints" / "last.pt", weights_only=True)
    ckpt["data"]["class_names"] = list("abcdefghij")  # well-formed, but not what was saved
    torch.save(ckpt, tmp_path / "edited.pt")  # with the old checksum
    with pytest.raises(CheckpointError, match="is corrupt"):
        load_checkpoint(tmp_path / "edited.pt")
    ckpt["data"]["class_names"] = ["a", "b"]
    resave(ckpt, tmp_path / "resaved.pt")
    with pytest.raises(CheckpointError, match=r"'data' does not describe.*2 class_names"):
        load_checkpoint(tmp_path / "resaved.pt")


@pytest.mark.parametrize("case", ["missing ckpt", "no file", "bad image", "not an image run",
                                  "text run given images", "feature run"])  # fmt: skip
def test_bad_inputs_are_refused_in_one_line(case, digits_run, text_run, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.new("L", (8, 8)).save(tmp_path / "fine.png")
    ckpt, kwargs, words = {
        "missing ckpt": (tmp_path / "nope.pt", {"input": str(tmp_path)}, "does not exist"),
        "no file": (digits_run, {"input": str(tmp_path / "*.jpeg")}, "matches no file"),
        "bad image": (digits_run, {"input": str(tmp_path / "broken.png")}, "cannot decode image"),
        "not an image run": (digits_run, {"text": "a fine film"}, "this run classifies images"),
        "text run given images": (text_run[0], {"input": str(tmp_path / "fine.png")},
                                  "is an image, but this run classifies text"),
        "feature run": (digits_run, {"input": str(tmp_path)}, "feature vectors"),
    }[case]  # fmt: skip
    if case == "feature run":  # a run on feature vectors: no file format gives its inputs
        saved = torch.load(digits_run / "checkpoints" / "last.pt", weights_only=True)
        saved["data"]["preprocessing"] = None
        resave(saved, tmp_path / "features.pt")
        ckpt = tmp_path / "features.pt"
    with pytest.raises(DlxError, match=words):
        run_predict(opts(ckpt=str(ckpt), **kwargs), tmp_path / "p")
    assert not (tmp_path / "p" / "predictions.csv").exists()


def test_pickle_payloads_never_run(digits_run, tmp_path, cli_env):
    marker = tmp_path / "PWNED"
    torch.save({"model": {}, "history": [Evil(marker)]}, tmp_path / "evil.pt")
    out = run_dlx("predict", f"ckpt={tmp_path / 'evil.pt'}", f"input={tmp_path}",
                  f"hydra.run.dir={tmp_path / 'p'}", env=cli_env)  # fmt: skip
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and len(lines) == 1
    assert lines[0].startswith("error: ") and "holds Python objects (posix.system)" in lines[0]
    # the same bytes named .onnx (with metadata beside them), or as a run's model.npz
    shutil.copy(tmp_path / "evil.pt", tmp_path / "evil.onnx")
    data = load_checkpoint(digits_run / "checkpoints" / "last.pt")["data"]
    meta = {"task": "classify", "input": {"dtype": "float32"}, "data": data}
    (tmp_path / "evil.onnx.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="is not a readable ONNX model"):
        run_predict(opts(ckpt=str(tmp_path / "evil.onnx"), input=str(tmp_path)), tmp_path / "q")
    run = tmp_path / "sk"
    run.mkdir()
    np.savez(run / "model.npz", coef_=np.array([Evil(marker)], dtype=object))
    steps = [{"prefix": "", "type": "Perceptron", "settings": {}}]
    (run / "model.json").write_text(json.dumps({"steps": steps, "data": data}))
    with pytest.raises(DlxError, match="holds pickled Python objects"):
        run_predict(opts(ckpt=str(run), input=str(tmp_path)), tmp_path / "r")
    assert not marker.exists(), "the pickle payload ran"


def test_the_checkpoints_stored_config_is_checked_before_anything_is_built(digits_run, tmp_path):
    ckpt = torch.load(digits_run / "checkpoints" / "last.pt", weights_only=True)
    ckpt["config"]["model"] = {"_target_": "dlx.engine.runtime.os.system",
                               "command": f"touch {tmp_path / 'PWNED'}"}  # fmt: skip
    resave(ckpt, tmp_path / "evil.pt")
    with pytest.raises(DlxError, match=r"model._target_=dlx.engine.runtime.os.system"):
        run_predict(opts(ckpt=str(tmp_path / "evil.pt"), input=str(tmp_path)), tmp_path / "p")
    assert not (tmp_path / "PWNED").exists()


def test_help_documents_its_own_keys_only(cli_env):
    out = run_dlx("predict", "--help", env=cli_env)
    assert out.returncode == 0, out.stderr
    assert "  top_k: 3  # the k most probable classes" in out.stdout
    assert "Configuration groups" not in out.stdout and "trainer.max_epochs" not in out.stdout
