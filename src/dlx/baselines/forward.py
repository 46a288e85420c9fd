"""A fitted scikit-learn estimator's forward pass, recomputed in numpy from its saved arrays.

No estimator is pickled (a pickle runs code when loaded): a run saves its learned arrays
(model.npz, `fitted.learned_arrays`) and, in model.json, each step's type and the few
settings its forward pass needs (`steps()`). `scores()` recomputes what `predict_proba`
(or, for estimators without one, `decision_function`) gives, for the step types below;
another type is refused in one line.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlx.baselines.fitted import steps_of
from dlx.core.errors import ConfigError

# step type -> the settings its forward pass reads (fitted attributes end in _)
SETTINGS: dict[str, tuple[str, ...]] = {
    "StandardScaler": ("with_mean", "with_std"),
    "MinMaxScaler": ("clip", "feature_range"),
    "BernoulliRBM": (),
    "MLPClassifier": ("activation", "out_activation_"),
}
# Linear classifiers: coef_ and intercept_; those with probabilities, by their link.
LINEAR = {"LogisticRegression": "softmax", "Perceptron": None, "SGDClassifier": None,
          "RidgeClassifier": None, "LinearSVC": None}  # fmt: skip


def steps(estimator: Any) -> list[dict[str, Any]]:
    """Each step's name (the prefix of its arrays in model.npz), type and settings."""
    out = []
    for step, est in steps_of(estimator):
        kind = type(est).__name__
        settings = {k: _plain(getattr(est, k, None)) for k in SETTINGS.get(kind, ())}
        out.append({"prefix": f"{step}." if step else "", "type": kind, "settings": settings})
    return out


def probabilistic(described: list[dict[str, Any]]) -> bool:
    """Whether `scores` gives probabilities (else decision scores) for these steps."""
    kind = described[-1]["type"]
    return kind == "MLPClassifier" or LINEAR.get(kind) is not None


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow warning for large |z|


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


_ACTIVATIONS = {
    "identity": lambda z: z,
    "logistic": _sigmoid,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
}


def scores(
    arrays: dict[str, np.ndarray], described: list[dict[str, Any]], x: np.ndarray
) -> tuple[np.ndarray, bool]:
    """(one score per class in `classes_` order, whether they are probabilities)."""
    *transforms, last = described
    for step in transforms:
        x = _transform(arrays, step, x)
    return _classify(arrays, last, x)


def _get(arrays: dict[str, np.ndarray], step: dict[str, Any], attr: str) -> np.ndarray:
    key = step["prefix"] + attr
    if key not in arrays:
        raise ConfigError(f"model.npz lacks {key}, which a fitted {step['type']} holds")
    return arrays[key]


def _transform(arrays: dict[str, np.ndarray], step: dict[str, Any], x: np.ndarray) -> np.ndarray:
    kind, s = step["type"], step["settings"]
    if kind == "StandardScaler":
        if s.get("with_mean"):
            x = x - _get(arrays, step, "mean_")
        if s.get("with_std"):
            x = x / _get(arrays, step, "scale_")
        return x
    if kind == "MinMaxScaler":
        x = x * _get(arrays, step, "scale_") + _get(arrays, step, "min_")
        return np.clip(x, *s["feature_range"]) if s.get("clip") else x
    if kind == "BernoulliRBM":
        z = x @ _get(arrays, step, "components_").T + _get(arrays, step, "intercept_hidden_")
        return _sigmoid(z)
    raise ConfigError(f"dlx predict cannot recompute a {kind} step from its saved arrays")


def _classify(
    arrays: dict[str, np.ndarray], step: dict[str, Any], x: np.ndarray
) -> tuple[np.ndarray, bool]:
    kind = step["type"]
    if kind == "MLPClassifier":
        act = _ACTIVATIONS.get(step["settings"]["activation"])
        if act is None:
            raise ConfigError(f"unknown MLPClassifier activation {step['settings']['activation']}")
        n = sum(1 for k in arrays if k.startswith(step["prefix"] + "coefs_."))
        for i in range(n):
            x = x @ _get(arrays, step, f"coefs_.{i}") + _get(arrays, step, f"intercepts_.{i}")
            if i < n - 1:
                x = act(x)
        return _link(x, step["settings"]["out_activation_"]), True
    if kind in LINEAR:
        z = x @ _get(arrays, step, "coef_").T + _get(arrays, step, "intercept_")
        if LINEAR[kind] is None:  # decision scores: the class is their argmax (or z > 0)
            return (np.concatenate([-z, z], axis=1) if z.shape[1] == 1 else z), False
        return _link(z, "logistic" if z.shape[1] == 1 else "softmax"), True
    raise ConfigError(f"dlx predict cannot recompute a {kind} from its saved arrays")


def _link(z: np.ndarray, out: str) -> np.ndarray:
    if out == "softmax":
        return _softmax(z)
    p = _sigmoid(z[:, :1])  # two classes, one output: P(classes_[1])
    return np.concatenate([1 - p, p], axis=1)
