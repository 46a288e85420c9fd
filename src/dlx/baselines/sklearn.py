"""A scikit-learn estimator (or pipeline) as a dlx runner: fit on train, score every split.

The config gives the estimator as a nested `_target_` (Hydra builds it), or as an ordered
mapping of named steps (built here into a Pipeline, e.g. BernoulliRBM -> LogisticRegression,
so grid keys read like the book's `rbm__n_iter`). `scaler` puts a StandardScaler or
MinMaxScaler in front, fitted on train only, as the book's listing 6-3 does. A `search`
block runs GridSearchCV on train, reports `cv/best_score` and `best_params`, and fits the
best on all of train (`refit: false`: the estimator as configured).

scikit-learn's model_selection costs ~2 s to import, so it is imported in `run()` only.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from dlx.baselines.fitted import count_params, describe, learned_arrays, n_iter, plain
from dlx.core.errors import ConfigError

log = logging.getLogger("dlx")

SCALERS = {"standard": "StandardScaler", "minmax": "MinMaxScaler"}
SEARCH_KEYS = {"param_grid", "cv", "n_jobs", "scoring", "enabled", "refit"}
# The step a single estimator gets when a scaler is put in front of it.
MODEL_STEP = "model"


class SklearnBaseline:
    """Runner for `model=sklearn_*`: `run(data=..., cfg=..., run_dir=...)` -> metrics."""

    def __init__(
        self,
        spec: Any = None,
        estimator: Any = None,
        scaler: str | None = None,
        search: Mapping[str, Any] | None = None,
        threads: int | None = 1,
    ) -> None:
        from sklearn.base import BaseEstimator

        self.spec = spec
        if isinstance(estimator, Mapping):
            if not estimator:
                raise ConfigError("model.estimator: an empty mapping of pipeline steps")
            steps = list(estimator.items())
        elif isinstance(estimator, BaseEstimator):
            steps = [(MODEL_STEP, estimator)]
        else:
            raise ConfigError(
                "model.estimator must be a scikit-learn estimator (a nested _target_) or a "
                f"mapping of named steps, not {type(estimator).__name__}"
            )
        for name, step in steps:
            if not isinstance(step, BaseEstimator):
                raise ConfigError(f"model.estimator.{name} is not a scikit-learn estimator")
        if scaler is not None and scaler not in SCALERS:
            raise ConfigError(f"model.scaler={scaler!r} must be null, {' or '.join(SCALERS)}")
        self.scaler = scaler
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"model.threads={threads!r} must be a positive integer or null")
        self.threads = threads
        # A lone estimator stays itself (its grid keys and fitted object are plain); a scaler
        # or several steps make a Pipeline.
        self.pipelined = scaler is not None or isinstance(estimator, Mapping)
        if self.pipelined:
            from sklearn.pipeline import Pipeline

            if scaler is not None:
                import sklearn.preprocessing

                steps.insert(0, ("scaler", getattr(sklearn.preprocessing, SCALERS[scaler])()))
            self.estimator = Pipeline(steps)
        else:
            self.estimator = estimator
        self.single = not isinstance(estimator, Mapping)
        # `enabled: false` keeps a grid in a config (the book's 81-candidate one) without
        # running it; `model.search.enabled=true` turns it on.
        search = None if search is None else dict(search)
        if search is not None and not search.pop("enabled", True):
            search = None
        self.search = None if search is None else self._check_search(search)

    def _check_search(self, search: dict[str, Any]) -> dict[str, Any]:
        unknown = set(search) - SEARCH_KEYS
        if unknown:
            raise ConfigError(
                f"model.search: unknown key(s) {', '.join(sorted(unknown))}; "
                f"expected {', '.join(sorted(SEARCH_KEYS))}"
            )
        grid = search.get("param_grid")
        if not isinstance(grid, Mapping) or not grid:
            raise ConfigError("model.search.param_grid must map parameter names to value lists")
        valid = self.estimator.get_params(deep=True)
        renamed = {}
        for key, values in grid.items():
            name = self._grid_key(str(key))
            if name not in valid:
                raise ConfigError(
                    f"model.search.param_grid: {key!r} is not a parameter of "
                    f"{type(self.estimator).__name__}"
                    + (" (pipeline steps: name them as step__param)" if self.pipelined else "")
                )
            if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or not values:
                raise ConfigError(f"model.search.param_grid.{key} must be a non-empty list")
            renamed[name] = list(values)
        cv = search.get("cv", 3)
        if not isinstance(cv, int) or cv < 2:
            raise ConfigError(f"model.search.cv={cv!r} must be an integer >= 2 (folds)")
        refit = search.get("refit", True)
        if not isinstance(refit, bool):
            raise ConfigError(f"model.search.refit={refit!r} must be true or false")
        return {
            "refit": refit,
            "param_grid": renamed,
            "cv": cv,
            "n_jobs": search.get("n_jobs", 1),
            "scoring": search.get("scoring", "accuracy"),
            "keys": {self._grid_key(str(k)): str(k) for k in grid},
        }

    def _grid_key(self, key: str) -> str:
        # With a scaler in front of a single estimator, `C` means `model__C`.
        if self.pipelined and self.single and "__" not in key:
            return f"{MODEL_STEP}__{key}"
        return key

    def run(self, data: Any, cfg: Any = None, run_dir: Path | None = None) -> dict[str, Any]:
        from sklearn.base import clone

        if data is None:
            raise ConfigError("a scikit-learn baseline needs a dataset (dataset=...)")
        splits = {name: as_arrays(split, data.scale) for name, split in data.splits().items()}
        x_train, y_train = splits["train"]
        metrics: dict[str, Any] = {}
        # These matrices are small (at most thousands x 64): split across BLAS threads they
        # only wait on each other, badly so on a busy machine (the book's 6-3 MLP: 17 s with
        # 2 OpenBLAS threads on a loaded 2-core box, 0.6 s with 1).
        from threadpoolctl import threadpool_limits

        with threadpool_limits(self.threads):
            t0 = time.perf_counter()
            estimator = clone(self.estimator)
            if self.search is not None:
                with logged_warnings():
                    best = self._grid_search(x_train, y_train, metrics)
                if self.search["refit"]:
                    estimator.set_params(**best)
            # The final fit on all of train: GridSearchCV's refit of the best (done here so
            # `converged` describes this fit, not the folds'), or with `refit: false` the
            # estimator as configured (the book reports its search, then fits C=100 by hand).
            with logged_warnings() as caught:
                fitted = estimator.fit(x_train, y_train)
            fit_time = time.perf_counter() - t0
            predicted = {name: fitted.predict(x) for name, (x, _) in splits.items()}
            for name, (_, y) in splits.items():
                metrics[f"{name}/acc"] = float(np.mean(predicted[name] == y))
        self.fitted = fitted
        metrics["num_params"] = count_params(fitted)
        epochs = n_iter(fitted)
        if epochs is not None:
            metrics["epochs"] = epochs
        metrics["converged"] = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        metrics["fit_time_s"] = fit_time
        if run_dir is not None:
            from dlx.baselines.forward import steps
            from dlx.core.io import save_npz, write_json
            from dlx.core.preprocessing import describe as describe_data

            save_npz(learned_arrays(fitted), Path(run_dir) / "model.npz")
            # What `dlx predict` needs besides the arrays: each step's type and settings,
            # the classes and the data's preprocessing (plain values, no pickle).
            model_json = {"steps": steps(fitted), "data": describe_data(data)}
            write_json(model_json, Path(run_dir) / "model.json")
            # Each split's predicted labels: the figures (confusion matrix, sample grid) and
            # `dlx viz` read them, as no fitted estimator is pickled.
            save_npz(predicted, Path(run_dir) / "predictions.npz")
        log.info(
            "dlx train: %s on %d samples, %d params, fit in %.1f s",
            describe(fitted),
            len(y_train),
            metrics["num_params"],
            fit_time,
        )
        return metrics

    def _grid_search(self, x: np.ndarray, y: np.ndarray, metrics: dict[str, Any]) -> dict:
        """GridSearchCV on train; records cv/best_score and best_params, returns the best."""
        from sklearn.model_selection import GridSearchCV

        assert self.search is not None
        s = self.search
        grid = GridSearchCV(
            self.estimator,
            s["param_grid"],
            cv=s["cv"],
            n_jobs=s["n_jobs"],
            scoring=s["scoring"],
            refit=False,
        )
        n = int(np.prod([len(v) for v in s["param_grid"].values()]))
        log.info("grid search: %d candidates x %d folds = %d fits", n, s["cv"], n * s["cv"])
        grid.fit(x, y)
        metrics["cv/best_score"] = float(grid.best_score_)
        metrics["best_params"] = {s["keys"][k]: plain(v) for k, v in grid.best_params_.items()}
        return grid.best_params_


@contextmanager
def logged_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record the warnings scikit-learn raises (ConvergenceWarning above all) and log each
    distinct one once, instead of a screenful of repeats from the folds."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    seen = set()
    for w in caught:
        if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)):
            continue
        line = f"{w.category.__name__}: {str(w.message).splitlines()[0]}"
        if line not in seen:
            seen.add(line)
            log.warning("%s", line)


def as_arrays(split: Any, scale: float | None) -> tuple[np.ndarray, np.ndarray]:
    """A Split -> (x [n, features], y [n]) numpy arrays, with the data set's scale applied.

    Floats stay as stored (float32: the book's nudged digits were float32 too); integers
    (uint8 pixels) become float64, as scikit-learn's own loaders hand them out.
    """
    x = split.take(slice(None)).x.detach().cpu().numpy()  # a streamed split: decoded now
    x = x.reshape(len(x), -1)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if scale is not None and scale != 1.0:
        x = x * x.dtype.type(scale)
    return x, split.y.detach().cpu().numpy()
