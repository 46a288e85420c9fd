"""A scikit-learn run's forward pass, recomputed from its model.npz and model.json (what
`dlx predict` uses), equals the fitted estimator's own predict_proba / decision_function."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Perceptron
from sklearn.neural_network import BernoulliRBM, MLPClassifier

from dlx.baselines.forward import probabilistic, scores
from dlx.baselines.sklearn import SklearnBaseline, as_arrays
from dlx.core.errors import ConfigError
from dlx.core.io import read_npz
from tests.baselines.test_sklearn import tiny

ESTIMATORS = {
    "logistic": lambda: SklearnBaseline(estimator=LogisticRegression(max_iter=500)),
    "binary logistic": lambda: SklearnBaseline(estimator=LogisticRegression()),
    "mlp + standard": lambda: SklearnBaseline(
        estimator=MLPClassifier((8,), activation="tanh", max_iter=300, random_state=0),
        scaler="standard",
    ),
    "rbm -> logistic, minmax": lambda: SklearnBaseline(
        estimator={
            "rbm": BernoulliRBM(n_components=6, n_iter=3, random_state=0),
            "logistic": LogisticRegression(),
        },
        scaler="minmax",
    ),
    "perceptron": lambda: SklearnBaseline(estimator=Perceptron(max_iter=20, random_state=0)),
}


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_saved_arrays_reproduce_the_estimator(name, tmp_path):
    data = tiny(classes=2 if name == "binary logistic" else 3, spread=1.5, offset=0.5)
    runner = ESTIMATORS[name]()
    runner.run(data=data, run_dir=tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["data"]["num_classes"] == data.spec.num_classes
    x, _ = as_arrays(data.test, data.scale)
    got, is_prob = scores(read_npz(tmp_path / "model.npz"), meta["steps"], x)
    assert is_prob == probabilistic(meta["steps"]) == (name != "perceptron")
    fitted = runner.fitted
    want = fitted.predict_proba(x) if is_prob else fitted.decision_function(x)
    if want.ndim == 1:  # two classes: one score, for classes_[1]
        want = np.stack([-want, want], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # float32 features
    assert (fitted.classes_[got.argmax(1)] == fitted.predict(x)).all()


def test_a_step_it_cannot_recompute_is_refused_in_one_line(tmp_path):
    steps = [{"prefix": "", "type": "KNeighborsClassifier", "settings": {}}]
    with pytest.raises(ConfigError, match="cannot recompute a KNeighborsClassifier"):
        scores({}, steps, np.zeros((1, 4)))
