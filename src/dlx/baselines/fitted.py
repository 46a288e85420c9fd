"""What a fitted scikit-learn estimator holds: its parts (pipeline steps, per-class copies),
learned arrays (saved as model.npz), parameter count, iterations, name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

# Learned parameters: what `num_params` counts (cf. a torch model's parameters).
PARAM_ATTRS = (
    "coef_",
    "intercept_",
    "coefs_",
    "intercepts_",
    "components_",
    "intercept_hidden_",
    "intercept_visible_",
)
# Fitted statistics, saved with the parameters (enough to re-apply a pipeline) but not
# counted: a scaler's mean is not a weight.
STAT_ATTRS = ("mean_", "var_", "scale_", "min_", "data_min_", "data_max_", "classes_")


def steps_of(estimator: Any) -> list[tuple[str, Any]]:
    return list(estimator.steps) if hasattr(estimator, "steps") else [("", estimator)]


def parts(estimator: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every fitted estimator inside `estimator`, with its name prefix: a pipeline's steps
    (`rbm.`), and the per-class copies a meta-estimator fits (OneVsRestClassifier, the
    book's liblinear set-up: `logistic.estimators_.3.`)."""
    for step, est in steps_of(estimator):
        name = f"{prefix}{step}." if step else prefix
        yield name, est
        inner = getattr(est, "estimators_", None)
        if isinstance(inner, list):
            for i, sub in enumerate(inner):
                yield from parts(sub, f"{name}estimators_.{i}.")


def learned_arrays(estimator: Any) -> dict[str, np.ndarray]:
    """The fitted parameters and statistics, named `<step>.<attr>` (`<attr>` alone for a
    lone estimator); lists of arrays (an MLP's `coefs_`) as `<attr>.<i>`."""
    out: dict[str, np.ndarray] = {}
    for prefix, est in parts(estimator):
        for attr in (*PARAM_ATTRS, *STAT_ATTRS):
            for i, array in enumerate(fitted_arrays(est, attr)):
                multi = isinstance(getattr(est, attr), (list, tuple))
                out[f"{prefix}{attr}.{i}" if multi else f"{prefix}{attr}"] = array
    return out


def fitted_arrays(estimator: Any, attr: str) -> list[np.ndarray]:
    value = getattr(estimator, attr, None)
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [np.asarray(v) for v in value]
    return [np.asarray(value)]


def count_params(estimator: Any) -> int:
    """Sizes of the learned parameter arrays (PARAM_ATTRS) of every fitted part."""
    return int(
        sum(
            a.size
            for _, est in parts(estimator)
            for attr in PARAM_ATTRS
            for a in fitted_arrays(est, attr)
        )
    )


def n_iter(estimator: Any) -> int | None:
    """Iterations (epochs) of the last step that reports them; per-class counts -> the max."""
    for _, est in reversed(steps_of(estimator)):
        value = getattr(est, "n_iter_", None)
        if value is not None:
            return int(np.max(value))
    return None


def describe(estimator: Any) -> str:
    steps = steps_of(estimator)
    if len(steps) == 1:
        return type(steps[0][1]).__name__
    return " -> ".join(type(est).__name__ for _, est in steps)


def plain(value: Any) -> Any:
    """numpy scalars -> Python numbers, for metrics.json."""
    return value.item() if isinstance(value, np.generic) else value
