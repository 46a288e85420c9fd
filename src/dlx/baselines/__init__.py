"""scikit-learn estimators behind the same `dlx train` contract as the torch models.

A model YAML names `dlx.baselines.sklearn.SklearnBaseline`, whose `estimator` is a nested
`_target_` scikit-learn estimator; `dlx train` calls the runner's `run()` and writes the
metrics it returns to `metrics.json`. Nothing here is imported on the torch path.
"""
