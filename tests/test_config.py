"""Config tree: every option composes, schemas catch mistakes, targets are allow-listed."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from dlx.compose import compose
from dlx.core.data import Spec
from dlx.core.errors import ConfigError
from dlx.core.schemas import SCHEMAS
from dlx.core.targets import check_targets, instantiate
from dlx.models import build_model

CONFIGS = __import__("dlx.configs", fromlist=["x"]).__path__[0]
OPTIMIZERS = sorted(p.stem for p in __import__("pathlib").Path(CONFIGS, "optimizer").glob("*.yaml"))


def test_defaults_compose():
    cfg = compose("train")
    assert cfg.seed == 2017
    assert cfg.dataset._target_ == "dlx.data.digits.Digits"
    assert cfg.model.hidden == [784]
    assert cfg.trainer.max_epochs == 20


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_builds_from_its_yaml(name):
    # One YAML an optimizer, no schema of its own: its _target_ and values are the file's.
    cfg = compose("train", [f"optimizer={name}"])
    model = torch.nn.Linear(3, 2)
    opt = instantiate(cfg.optimizer, "optimizer", params=model.parameters())
    assert type(opt).__name__.lower() == name  # adadelta.yaml builds torch.optim.Adadelta
    assert f"torch.optim.{type(opt).__name__}" == cfg.optimizer._target_
    assert opt.param_groups[0]["lr"] == cfg.optimizer.lr
    for key, value in cfg.optimizer.items():  # every value in the file reaches torch
        if key != "_target_":
            got = opt.param_groups[0][key]
            assert (list(got) if isinstance(got, tuple) else got) == value, key
    # Optimizer state must hold plain Python values: weights_only checkpoints need it.
    for value in opt.param_groups[0].values():
        assert "omegaconf" not in type(value).__module__


def test_adadelta_uses_the_books_keras_values_not_torchs():
    cfg = compose("train", ["optimizer=adadelta"]).optimizer
    assert (cfg.lr, cfg.rho, cfg.eps) == (1.0, 0.95, 1e-7)  # torch: rho 0.9, eps 1e-6


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.max_epochs=abc", "could not be converted to Integer"),
        ("trainer.compile=maybe", "trainer.compile=maybe"),
        ("trainer.bogus=1", "Key 'bogus' not in 'TrainerConfig'"),
        ("optimizer.lr=fast", "optimizer.lr=fast"),
        ("dataset.limit=some", "dataset.limit=some"),
        ("dataset.classes=[1.5,2]", "dataset.classes"),
        ("model=nope", "Could not find 'model/nope'"),
        ("seed=x", "seed=x"),
    ],
)
def test_bad_overrides_fail_at_compose_time(override, message):
    with pytest.raises(ConfigError) as err:
        compose("train", [override])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_experiment_book_6_9():
    cfg = compose("train", ["experiment=book/6_9_mlp_mnist"])
    assert cfg.dataset._target_ == "dlx.data.mnist.MNIST"
    assert (cfg.trainer.batch_size, cfg.trainer.max_epochs) == (500, 5)
    assert cfg.optimizer._target_ == "torch.optim.Adam"


def test_smoke_trainer_is_short():
    cfg = compose("train", ["debug=smoke"]).trainer
    assert cfg.max_epochs == 1 and cfg.limit_train_batches and cfg.limit_train_batches <= 10


@pytest.mark.parametrize(
    "target",
    [
        "os.system",
        "torch.hub.load",
        "torch.utils.cpp_extension.load",
        "builtins.eval",
        "subprocess.run",
    ],
)
def test_targets_outside_allow_list_are_refused(target):
    cfg = OmegaConf.create({"model": {"_target_": target, "x": 1}})
    with pytest.raises(ConfigError, match="is not allowed"):
        check_targets(cfg)


def test_nested_targets_are_checked_too():
    cfg = OmegaConf.create({"a": {"b": [{"_target_": "os.system"}]}})
    with pytest.raises(ConfigError, match=r"a\.b\[0\]\._target_=os\.system"):
        check_targets(cfg)


def test_sklearn_targets_must_be_estimators():
    check_targets(OmegaConf.create({"_target_": "sklearn.linear_model.LogisticRegression"}))
    with pytest.raises(ConfigError, match="not a class dlx builds"):
        check_targets(
            OmegaConf.create({"_target_": "sklearn.utils.estimator_checks.check_estimator"})
        )


def test_allow_list_extends_from_environment_only(monkeypatch):
    cfg = OmegaConf.create({"_target_": "collections.OrderedDict"})
    with pytest.raises(ConfigError):
        instantiate(cfg)
    monkeypatch.setenv("DLX_ALLOW_TARGETS", "collections.*")
    assert instantiate(cfg) == {}


def test_an_argument_the_class_does_not_take_is_one_line():
    cfg = compose("train", ["model.width=3"]).model  # a model's node is open to new keys
    with pytest.raises(ConfigError, match=r"model\.width is not an option of MLP"):
        build_model(cfg, Spec((1, 8, 8), 10))


def test_a_bad_value_for_the_constructor_is_one_line():
    cfg = compose("train", ["model.activation=swish"]).model
    with pytest.raises(ConfigError, match=r"unknown activation 'swish'"):
        build_model(cfg, Spec((1, 8, 8), 10))


def test_yaml_files_hold_only_what_differs_from_the_schemas():
    """A model's, data set's or optimizer's YAML holds no key its group's base schema
    already gives (init_from, freeze; classes, val_split, limit, cache_dir ...)."""
    import dataclasses
    from pathlib import Path

    for group, schema in (("model", "model"), ("dataset", "dataset")):
        base = {f.name for f in dataclasses.fields(SCHEMAS[schema])} - {"download"}
        for path in Path(CONFIGS, group).glob("*.yaml"):
            keys = set(OmegaConf.load(path))
            assert not keys & base, f"{path.name} repeats {sorted(keys & base)}"
