"""logger=mlflow: a real MLflow file store, read back with MlflowClient."""

from __future__ import annotations

import json

import pytest

from dlx.compose import compose
from dlx.core.errors import ConfigError, DlxError
from dlx.observe import Observer
from tests.runs import train

# An optional extra (dlx[mlflow]); `make install` installs it, so CI runs these tests.
pytest.importorskip("mlflow")


@pytest.fixture
def client_for(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    def client(run_dir):
        saved = json.loads((run_dir / "mlflow_run.json").read_text())
        return MlflowClient(saved["tracking_uri"]), saved["run_id"]

    return client


def test_params_metrics_per_epoch_and_artifacts(tmp_path, client_for):
    run_dir, metrics = train(
        tmp_path,
        "dataset=digits",
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=3",
        "viz.figures=[learning_curves]",
        logger="mlflow",
    )
    client, run_id = client_for(run_dir)
    # the default store: a file store under paths.output_dir
    assert client.tracking_uri.startswith("file:") and "outputs/mlruns" in client.tracking_uri
    assert (tmp_path / "outputs" / "mlruns").is_dir()
    found = client.get_run(run_id)
    assert found.info.status == "FINISHED"
    assert found.data.params["optimizer._target_"] == "torch.optim.Adam"
    assert found.data.params["trainer.max_epochs"] == "3"
    history = client.get_metric_history(run_id, "train/loss")
    assert sorted(m.step for m in history) == [1, 2, 3]
    assert found.data.metrics["test/acc"] == pytest.approx(metrics["test/acc"])
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"metrics.json", "plots"} <= artifacts
    assert [a.path for a in client.list_artifacts(run_id, "plots")] == ["plots/learning_curves.png"]


def test_tracking_uri_from_the_environment(tmp_path, client_for, monkeypatch):
    store = tmp_path / "elsewhere"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    run_dir, _ = train(
        tmp_path, "dataset=digits", "debug=smoke", "viz.enabled=false", logger="mlflow"
    )
    client, run_id = client_for(run_dir)
    assert client.tracking_uri == store.as_uri()
    assert client.get_run(run_id).info.status == "FINISHED"
    assert not (tmp_path / "outputs" / "mlruns").exists()


def test_a_failing_run_is_marked_failed(tmp_path, client_for):
    cfg = compose("train", ["logger=mlflow", f"paths.output_dir={tmp_path / 'outputs'}"])
    with pytest.raises(DlxError), Observer(cfg, tmp_path / "run") as observer:
        observer.loggers.start(0, 0)  # training began (the trainer's first call)
        raise DlxError("something the user must fix")
    client, run_id = client_for(tmp_path / "run")
    assert client.get_run(run_id).info.status == "FAILED"


def test_missing_library_names_the_extra(monkeypatch):
    from dlx.command import check

    cfg = compose("train", ["logger=[csv,mlflow]"])
    monkeypatch.setitem(__import__("sys").modules, "mlflow", None)  # as if not installed
    with pytest.raises(
        ConfigError, match=r"logger=mlflow needs mlflow.*pip install 'dlx\[mlflow\]'"
    ):
        check(cfg, None)


def test_a_resumed_run_continues_its_mlflow_run_a_fresh_one_does_not(tmp_path, client_for):
    common = ("dataset=digits", "trainer.limit_train_batches=3", "viz.enabled=false")
    run_dir, _ = train(tmp_path, *common, "trainer.max_epochs=1", logger="mlflow")
    client, first = client_for(run_dir)
    train(tmp_path, *common, "trainer.max_epochs=2", "trainer.resume=auto", logger="mlflow")
    client, second = client_for(run_dir)
    assert second == first
    assert sorted(m.step for m in client.get_metric_history(first, "train/loss")) == [1, 2]
    assert client.get_run(first).info.status == "FINISHED"
    # a fresh run into the same folder is a new MLflow run
    train(tmp_path, *common, "trainer.max_epochs=1", logger="mlflow")
    assert client_for(run_dir)[1] != first
