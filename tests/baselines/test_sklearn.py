"""The scikit-learn runner on tiny data: it fits, reports the trainer's metric keys, counts
parameters, runs a grid search, and applies the scaler; plus the book's 6-3 through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression, Perceptron
from sklearn.neural_network import BernoulliRBM, MLPClassifier

from dlx.baselines.sklearn import SklearnBaseline, as_arrays
from dlx.core.data import Data, Spec, Split
from dlx.core.errors import ConfigError
from tests.conftest import run_dlx


def blobs(n: int, classes: int, seed: int, offset: float = 0.0, spread: float = 1.0) -> Split:
    """`classes` well-separated Gaussian blobs in 4-D (+ offset, x spread)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centres = np.eye(4)[y] * 6.0
    x = (centres + rng.normal(0.0, 0.5, (n, 4))) * spread + offset
    return Split(torch.tensor(x, dtype=torch.float32), torch.tensor(y))


def tiny(classes: int = 2, val: bool = False, **kw) -> Data:
    return Data(
        spec=Spec((4,), classes),
        train=blobs(60, classes, 0, **kw),
        val=blobs(30, classes, 1, **kw) if val else None,
        test=blobs(30, classes, 2, **kw),
    )


def test_perceptron_fits_reports_keys_and_saves_arrays(tmp_path):
    runner = SklearnBaseline(estimator=Perceptron(max_iter=20, tol=None, random_state=0))
    metrics = runner.run(data=tiny(val=True), cfg=None, run_dir=tmp_path)
    assert metrics["train/acc"] == 1.0 and metrics["val/acc"] >= 0.95
    assert metrics["test/acc"] >= 0.95
    assert metrics["num_params"] == 4 + 1  # coef_ [1, 4] + intercept_ [1]
    assert metrics["epochs"] == 20 and metrics["converged"] is True
    assert metrics["fit_time_s"] > 0
    saved = np.load(tmp_path / "model.npz", allow_pickle=False)  # arrays, not a pickle
    np.testing.assert_array_equal(saved["coef_"], runner.fitted.coef_)
    assert sorted(saved.files) == ["classes_", "coef_", "intercept_"]


def test_no_val_or_test_split_means_no_such_keys():
    data = tiny()
    data.test = None
    metrics = SklearnBaseline(estimator=LogisticRegression()).run(data=data)
    assert "train/acc" in metrics and "test/acc" not in metrics and "val/acc" not in metrics


def test_num_params_of_an_mlp_counts_weights_and_biases(tmp_path):
    mlp = MLPClassifier(hidden_layer_sizes=(7,), max_iter=300, random_state=0)
    metrics = SklearnBaseline(estimator=mlp).run(data=tiny(classes=3), run_dir=tmp_path)
    assert metrics["num_params"] == 4 * 7 + 7 + 7 * 3 + 3
    assert metrics["test/acc"] >= 0.9
    saved = np.load(tmp_path / "model.npz")
    assert saved["coefs_.0"].shape == (4, 7) and saved["coefs_.1"].shape == (7, 3)


def test_steps_mapping_builds_a_pipeline_rbm_then_logistic(tmp_path):
    steps = {
        "rbm": BernoulliRBM(n_components=5, n_iter=3, random_state=0),
        "logistic": LogisticRegression(max_iter=500),
    }
    data = tiny(classes=3, spread=1 / 8)  # the RBM wants inputs near [0, 1]
    runner = SklearnBaseline(estimator=steps)
    metrics = runner.run(data=data, run_dir=tmp_path)
    assert [name for name, _ in runner.fitted.steps] == ["rbm", "logistic"]
    assert metrics["num_params"] == (5 * 4 + 5 + 4) + (3 * 5 + 3)
    assert np.load(tmp_path / "model.npz")["rbm.components_"].shape == (5, 4)


@pytest.mark.parametrize("scaler", ["standard", "minmax"])
def test_scaler_is_fitted_on_train_and_put_first(scaler):
    data = tiny(offset=1000.0, spread=50.0)
    runner = SklearnBaseline(estimator=LogisticRegression(), scaler=scaler)
    metrics = runner.run(data=data)
    first = runner.fitted.steps[0][1]
    x_train = data.train.x.numpy()
    if scaler == "standard":
        np.testing.assert_allclose(first.mean_, x_train.mean(0), rtol=1e-5)
    else:
        np.testing.assert_allclose(first.data_min_, x_train.min(0))
    assert metrics["test/acc"] >= 0.95
    assert metrics["num_params"] == 5  # the scaler's statistics are not parameters


def test_search_reports_best_score_and_params_and_refits_the_best(tmp_path):
    search = {"param_grid": {"C": [1e-4, 10.0]}, "cv": 3, "n_jobs": 1}
    runner = SklearnBaseline(estimator=LogisticRegression(), scaler="standard", search=search)
    metrics = runner.run(data=tiny(classes=3), run_dir=tmp_path)
    assert metrics["best_params"] == {"C": 10.0}  # the user's key, not model__C
    assert 0.9 <= metrics["cv/best_score"] <= 1.0
    assert runner.fitted.steps[-1][1].C == 10.0


def test_search_with_refit_false_fits_the_configured_estimator():
    search = {"param_grid": {"C": [1e-4, 10.0]}, "cv": 3, "refit": False}
    runner = SklearnBaseline(estimator=LogisticRegression(C=1e-4), search=search)
    metrics = runner.run(data=tiny(classes=3))
    assert metrics["best_params"] == {"C": 10.0}
    assert runner.fitted.C == 1e-4


def test_search_disabled_runs_no_search():
    search = {"enabled": False, "param_grid": {"C": [1.0, 10.0]}}
    metrics = SklearnBaseline(estimator=LogisticRegression(), search=search).run(data=tiny())
    assert "cv/best_score" not in metrics and "best_params" not in metrics


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"estimator": "LogisticRegression"}, "must be a scikit-learn estimator"),
        ({"estimator": LogisticRegression(), "scaler": "robust"}, "model.scaler='robust'"),
        ({"estimator": LogisticRegression(), "search": {"param_grid": {"Cee": [1]}}}, "'Cee'"),
        ({"estimator": LogisticRegression(), "search": {"param_grid": {"C": []}}}, "non-empty"),
        ({"estimator": LogisticRegression(), "search": {"param_grid": {"C": [1]}, "cv": 1}}, "cv"),
        ({"estimator": LogisticRegression(), "search": {"grid": {}}}, "unknown key(s) grid"),
        ({"estimator": LogisticRegression(), "threads": 0}, "model.threads=0"),
    ],
)
def test_bad_options_are_config_errors(kwargs, words):
    with pytest.raises(ConfigError) as err:
        SklearnBaseline(**kwargs)
    assert words in str(err.value)


def test_without_data_is_a_config_error():
    with pytest.raises(ConfigError, match="needs a dataset"):
        SklearnBaseline(estimator=LogisticRegression()).run(data=None)


def test_integer_pixels_become_float64_and_are_scaled():
    split = Split(torch.tensor([[0, 8, 16]], dtype=torch.uint8), torch.tensor([1]))
    x, y = as_arrays(split, 1 / 16)
    assert x.dtype == np.float64 and x.tolist() == [[0.0, 0.5, 1.0]] and y.tolist() == [1]
    floats = Split(torch.tensor([[0.25, 0.5]]), torch.tensor([0]))
    assert as_arrays(floats, 1.0)[0].dtype == np.float32  # as stored, like the book's 6-5


def test_torch_path_does_not_import_model_selection():
    code = (
        "import sys, dlx.train, dlx.baselines.sklearn, dlx.rl.qlearning; "
        "assert 'sklearn.model_selection' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_book_6_3_through_the_cli(cli_env, tmp_path):
    run_dir = tmp_path / "run"
    out = run_dlx("train", "experiment=book/6_3_mlp_sklearn", f"hydra.run.dir={run_dir}",
                  env=cli_env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["num_params"] == 64 * 100 + 100 + 100 * 10 + 10
    assert metrics["test/acc"] >= 0.98 and metrics["train/acc"] >= 0.98
    assert metrics["epochs"] == 100 and metrics["converged"] is False  # as the book's run
    assert "scaler.mean_" in np.load(run_dir / "model.npz").files


def test_search_override_through_the_cli(cli_env, tmp_path):
    run_dir = tmp_path / "run"
    out = run_dlx(
        "train",
        "model=sklearn_logistic",
        "dataset=digits",
        "model.estimator.max_iter=200",
        "model.search={param_grid:{C:[0.01,1.0]},cv:3}",
        f"hydra.run.dir={run_dir}",
        env=cli_env,
    )
    assert out.returncode == 0, out.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["best_params"] == {"C": 1.0}
    assert metrics["cv/best_score"] > 0.9 and metrics["test/acc"] > 0.9


def test_one_vs_rest_counts_every_per_class_model(tmp_path):
    from sklearn.multiclass import OneVsRestClassifier

    ovr = OneVsRestClassifier(LogisticRegression(solver="liblinear"))
    metrics = SklearnBaseline(estimator=ovr).run(data=tiny(classes=3), run_dir=tmp_path)
    assert metrics["num_params"] == 3 * (4 + 1)  # three binary models
    assert np.load(tmp_path / "model.npz")["estimators_.2.coef_"].shape == (1, 4)
