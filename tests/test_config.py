"""Config tree: every option composes, schemas catch mistakes, targets are allow-listed."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from dlx.compose import compose
from dlx.config import SCHEMAS
from dlx.data.base import Spec
from dlx.errors import ConfigError
from dlx.models import build_model
from dlx.targets import check_targets, instantiate

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
    assert f"optimizer/{name}" in SCHEMAS  # each YAML is typed by a schema
    cfg = compose("train", [f"optimizer={name}"])
    model = torch.nn.Linear(3, 2)
    opt = instantiate(cfg.optimizer, "optimizer", params=model.parameters())
    assert isinstance(opt, torch.optim.Optimizer)
    assert type(opt).__name__.lower() == name.replace("nadam", "nadam")
    assert opt.param_groups[0]["lr"] == cfg.optimizer.lr
    # Optimizer state must hold plain Python values: weights_only checkpoints need it.
    for value in opt.param_groups[0].values():
        assert "omegaconf" not in type(value).__module__


def test_adadelta_uses_the_books_keras_values_not_torchs():
    cfg = compose("train", ["optimizer=adadelta"]).optimizer
    assert (cfg.lr, cfg.rho) == (1.0, 0.95)
    assert cfg.eps in (1e-7, 1e-8)


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.max_epochs=abc", "could not be converted to Integer"),
        ("trainer.compile=maybe", "trainer.compile=maybe"),
        ("trainer.bogus=1", "Key 'bogus' not in 'TrainerConfig'"),
        ("optimizer.lr=fast", "optimizer.lr=fast"),
        ("optimizer.momentum=0.9", "Key 'momentum' not in 'AdamConfig'"),
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
    cfg = compose("train", ["trainer=smoke"]).trainer
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


def test_bad_constructor_argument_is_one_line():
    cfg = compose("train", ["+model.width=3"]).model
    with pytest.raises(ConfigError, match=r"cannot build dlx\.models\.mlp\.MLP.*width"):
        build_model(cfg, Spec((1, 8, 8), 10))
