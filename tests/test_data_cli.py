"""`dlx data` and the text path end to end, through the real entry point."""

from __future__ import annotations

import json

from tests.conftest import run_dlx
from tests.data.formats import write_cifar, write_imdb_jsonl


def test_data_summarizes_mnist(cli_env, mnist_root, tmp_path):
    before = sorted(p.name for p in mnist_root.rglob("*"))
    out = run_dlx("data", "dataset=mnist", f"dataset.root={mnist_root}", env=cli_env)
    assert out.returncode == 0, out.stderr
    assert "│ train │     200 │ [200, 1, 28, 28] │ uint8" in out.stdout
    assert "│ test  │     100 │ [100, 1, 28, 28] │ uint8" in out.stdout
    assert f"cache: written to {cli_env['DLX_CACHE_DIR']}/mnist-" in out.stdout
    assert sorted(p.name for p in mnist_root.rglob("*")) == before  # nothing under root
    again = run_dlx("data", "dataset=mnist", f"dataset.root={mnist_root}", env=cli_env)
    assert "cache: read from" in again.stdout


def test_data_reports_text_vocabulary_and_class_counts(cli_env, tmp_path):
    root = write_imdb_jsonl(tmp_path / "imdb-root")
    out = run_dlx("data", "dataset=imdb", f"dataset.root={root}", "dataset.maxlen=5",
                  "dataset.download=false", env=cli_env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "│ 0 neg │     2 │    2 │" in out.stdout and "│ 1 pos │     2 │    2 │" in out.stdout
    assert "vocabulary: 20,000" in out.stdout and "int64" in out.stdout


def test_data_without_download_only_verifies(cli_env, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run_dlx("data", "dataset=cifar10", f"dataset.root={empty}", "dataset.download=false",
                  env=cli_env)  # fmt: skip
    assert out.returncode == 2
    assert (
        out.stderr.startswith("error: CIFAR-10 files missing in") and "Traceback" not in out.stderr
    )
    assert len(out.stderr.strip().splitlines()) == 1
    assert not list(empty.iterdir())


def test_data_bad_pickle_is_one_line(cli_env, tmp_path):
    folder = write_cifar(tmp_path / "root")
    (folder / "test_batch").write_bytes((folder / "test_batch").read_bytes()[:100])
    out = run_dlx("data", "dataset=cifar10", f"dataset.root={tmp_path / 'root'}", env=cli_env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert (
        out.stderr.count("\n") == 1 and "test_batch is not a readable CIFAR-10 batch" in out.stderr
    )
    assert not list((tmp_path / "cache").glob("*.pt"))


def test_data_classes_option(cli_env, tmp_path):
    folder = write_cifar(tmp_path / "root", per_batch=20)
    out = run_dlx("data", "dataset=cifar10", f"dataset.root={folder.parent}",
                  "dataset.classes=[3,5]", env=cli_env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "cifar10: 2 classes" in out.stdout and "0 cat" in out.stdout and "1 dog" in out.stdout


def test_train_embedding_bag_on_text(cli_env, tmp_path):
    reviews = {
        s: {
            "neg": [(i, 1, f"awful boring {'dull ' * (i % 3)}film number{i}") for i in range(40)],
            "pos": [(i, 9, f"great wonderful {'fun ' * (i % 3)}film number{i}") for i in range(40)],
        }
        for s in ("train", "test")
    }
    root = write_imdb_jsonl(tmp_path / "imdb-root", reviews)
    run_dir = tmp_path / "run"
    out = run_dlx("train", "dataset=imdb", f"dataset.root={root}", "model=embedding_bag",
                  "model.dim=8", "optimizer.lr=0.05", "trainer.max_epochs=5",
                  "trainer.batch_size=16", f"hydra.run.dir={run_dir}", env=cli_env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/acc"] == 1.0


def test_mlp_on_text_is_refused_in_one_line(cli_env, tmp_path):
    root = write_imdb_jsonl(tmp_path / "imdb-root")
    out = run_dlx("train", "dataset=imdb", f"dataset.root={root}", env=cli_env)
    assert out.returncode == 2 and "use a text model such as model=embedding_bag" in out.stderr
