"""Tests that grow with the configs: every experiment, model and data set YAML in the package
runs (none is pinned in a list here), and a staged experiment stays small under debug=smoke.

The experiments run as one multirun of the real CLI (lightning-hydra-template's
`experiment=glob(*)`), on tiny copies of the real data formats.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dlx.compose import compose
from dlx.core.data import Spec
from dlx.models import build_model
from tests.conftest import make_mnist, run_dlx
from tests.data.formats import (
    write_cifar,
    write_image_folder,
    write_imdb_jsonl,
    write_torch_home,
)
from tests.runs import train

CONFIGS = Path(__import__("dlx.configs", fromlist=["x"]).__path__[0])
EXPERIMENTS = sorted(
    str(p.relative_to(CONFIGS / "experiment").with_suffix(""))
    for p in (CONFIGS / "experiment").rglob("*.yaml")
)
MODELS = sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml"))
DATASETS = sorted(p.stem for p in (CONFIGS / "dataset").glob("*.yaml"))
# What each kind of data looks like to a model (the spec decides what a model can take).
IMAGES, TOKENS, FEATURES = Spec((1, 8, 8), 10), Spec((12,), 2, vocab_size=50), Spec((64,), 10)
# Experiments whose real inputs are too big for the smoke budget on a CPU, and what shrinks
# them under debug=smoke (run as a second sweep, checked the same way).
SHRINK = {"finetune_image_folder": ["model.input_size=32"]}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """MNIST, CIFAR-10, IMDB and a folder of photos in their published formats, tiny, under
    one root."""
    root = tmp_path_factory.mktemp("data")
    make_mnist(root, n_train=120, n_test=60)
    write_cifar(root, per_batch=12)
    write_imdb_jsonl(root)
    write_image_folder(root / "photos", {"cat": 8, "dog": 8}, size=(20, 14), fmt="jpg")
    return root


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory) -> Path:
    """torchvision's cache with resnet18's DEFAULT weights (random): model=torchvision's
    default reads them from there, as it would offline, and nothing is downloaded."""
    root = tmp_path_factory.mktemp("torch_home")
    write_torch_home(root, "resnet18")
    return root


def _job_results(sweep: Path) -> dict[str, dict]:
    return {
        json.loads(p.read_text())["overrides"][0]: json.loads(p.read_text())
        for p in sweep.glob("*/job_status.json")
    }


def test_every_experiment_runs_small_under_debug_smoke(data_dir, torch_home, tmp_path, cli_env):
    env = {**cli_env, "DLX_DATA_DIR": str(data_dir), "TORCH_HOME": str(torch_home)}
    plain = [e for e in EXPERIMENTS if e not in SHRINK]
    sweeps = [(plain, [])] + [([e], extra) for e, extra in SHRINK.items() if e in EXPERIMENTS]
    jobs = {}
    for i, (names, extra) in enumerate(sweeps):
        sweep = tmp_path / f"sweep{i}"
        out = run_dlx(
            "train",
            "-m",
            f"experiment={','.join(names)}",
            "debug=smoke",
            *extra,
            f"hydra.sweep.dir={sweep}",
            env=env,
            timeout=900,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        jobs.update(_job_results(sweep))
    assert sorted(jobs) == sorted(f"experiment={e}" for e in EXPERIMENTS)
    for name, job in jobs.items():
        assert job["status"] == "done", (name, job.get("error"))
        assert job["ended"] - job["started"] < 20, f"{name} took {job['ended'] - job['started']}s"
    for job in jobs.values():  # a staged experiment: every stage small, debug over stages
        for cfg in Path(job["run_dir"]).glob("*_*/metrics.json"):
            metrics = json.loads(cfg.read_text())
            assert metrics.get("epochs", 1) == 1, cfg


def test_a_staged_experiment_keeps_what_the_user_typed_over_its_stages(data_dir, tmp_path):
    # 6-6's stage 2 says max_epochs 60, batch 128; the command line's values win over it,
    # and debug=smoke's (max_epochs 1) wins over the stage but not over the command line.
    from dlx.stages import stage_runs

    typed = ["experiment=book/6_6_rbm_torch", "debug=smoke", "trainer.max_epochs=2"]
    stages = stage_runs(compose("train", typed), tmp_path, typed)
    assert [s[1].trainer.max_epochs for s in stages] == [2, 2]
    assert [s[1].trainer.batch_size for s in stages] == [10, 128]
    assert [s[1].trainer.limit_train_batches for s in stages] == [5, 5]
    assert stages[1][1].model.init_from == str(tmp_path / "1_rbm" / "checkpoints" / "last.pt")
    assert OmegaConf.select(stages[1][1], "optimizer._target_") == "torch.optim.Adam"
    picked = ["experiment=book/6_6_rbm_torch", "optimizer=sgd"]  # a group the user chose
    stages = stage_runs(compose("train", picked), tmp_path, picked)
    assert stages[1][1].optimizer._target_ == "torch.optim.SGD"
    assert stages[1][1].optimizer.lr == 0.03  # the stage's value on the user's optimizer


def test_an_experiment_wins_over_a_trainer_preset_but_not_over_debug_smoke():
    cfg = compose("train", ["experiment=book/6_9_mlp_mnist", "debug=smoke"])
    assert cfg.trainer.max_epochs == 1 and cfg.trainer.batch_size == 500


@pytest.mark.parametrize("name", MODELS)
def test_every_model_yaml_builds(name, torch_home, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(torch_home))  # pretrained defaults read from there
    cfg = compose("train", [f"model={name}"])
    if cfg.model.get("_target_", "").startswith("dlx.rl"):
        pytest.skip("a Q-learning runner builds from its environment, tested in tests/rl")
    takes = TOKENS if name in ("lstm", "gru", "embedding_bag") else IMAGES
    if name in ("rbm", "dbn"):
        takes = FEATURES
    if "perceptron" in name:  # two classes of feature vectors
        takes = Spec((2,), 2)
    model = build_model(cfg.model, takes)
    assert model is not None


@pytest.mark.parametrize("name", DATASETS)
def test_every_data_set_yaml_composes_with_the_shared_options(name):
    cfg = compose("train", [f"dataset={name}", "dataset.limit=7", "dataset.val_split=0.1"])
    assert cfg.dataset._target_.startswith("dlx.data.")
    assert (cfg.dataset.limit, cfg.dataset.val_split) == (7, 0.1)
    assert "download" in cfg.dataset  # a no-op where there is nothing to fetch


def test_every_data_set_trains_under_debug_smoke(data_dir, tmp_path, monkeypatch):
    # In this process (compose + run): the CLI itself is run by the experiments' test.
    monkeypatch.setenv("DLX_DATA_DIR", str(data_dir))
    write_image_folder(tmp_path / "imgs", {"a": 4, "b": 4})
    (tmp_path / "x.csv").write_text(
        "text,label\n" + "".join(f"w{i} x,{i % 2}\n" for i in range(20))
    )
    models = {"image_folder": "cnn", "imdb": "embedding_bag", "text": "lstm", "text_csv": "gru"}
    options = {
        "image_folder": [f"dataset.root={tmp_path / 'imgs'}", "dataset.image_size=8"],
        "text": [f"dataset.path={tmp_path / 'x.csv'}"],
        "text_csv": [f"dataset.path={tmp_path / 'x.csv'}"],
    }
    for name in DATASETS:
        model = models.get(name, "mlp")
        extra = ["debug=smoke", "viz.enabled=false", *options.get(name, [])]
        _, metrics = train(tmp_path, f"dataset={name}", f"model={model}", *extra, name=name)
        assert metrics["epochs"] == 1 and "train/loss" in metrics, name
