"""`dlx runs`: every run under a folder, single runs and sweep jobs, from the files they
wrote; `compare=` draws their learning curves. Damaged or foreign files are skipped with a
warning, never run."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import DLX, run_dlx
from tests.runs import png_size, train


class Payload:
    """Unpickled, it would create PWNED in the current folder."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """outputs/ with a single run and a two-job sweep made by `dlx train` (at once), a run
    made without Hydra (no .hydra/), and two runs whose files are damaged or hostile."""
    base = tmp_path_factory.mktemp("runs")
    out = base / "outputs"
    env = {**os.environ, "DLX_CACHE_DIR": str(base / "cache"), "PYTHONUNBUFFERED": "1"}
    smoke = ["debug=smoke", "viz.enabled=false"]
    procs = [
        subprocess.Popen([DLX, "train", *smoke, "optimizer.lr=0.01",
                          f"hydra.run.dir={out / 'train' / 'a'}"], env=env, cwd=base),
        subprocess.Popen([DLX, "train", "-m", *smoke, "optimizer.lr=0.001,0.05",
                          f"hydra.sweep.dir={out / 'multirun' / 's'}"], env=env, cwd=base),
    ]  # fmt: skip
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    train(base, "debug=smoke", "viz.enabled=false", name="outputs/old")
    broken = out / "broken"
    (broken / ".hydra").mkdir(parents=True)
    (broken / ".hydra" / "config.yaml").write_text(
        'x: !!python/object/apply:os.system ["touch PWNED"]\n'
    )
    (broken / ".hydra" / "overrides.yaml").write_text("- [unclosed\n")
    (broken / "metrics.json").write_text("{not json")
    (broken / "metrics.csv").write_text("epoch,train/loss\n1,abc\n")
    # an MLflow store keeps a copy of a run's metrics.json as an artifact: not a run
    (out / "mlruns" / "1" / "abc" / "artifacts").mkdir(parents=True)
    (out / "mlruns" / "1" / "abc" / "artifacts" / "metrics.json").write_text('{"test/acc": 1}')
    pickled = out / "pickled"
    (pickled / "checkpoints").mkdir(parents=True)
    (pickled / "metrics.json").write_text(json.dumps({"test/acc": 0.01, "epochs": 1}))
    torch.save({"config": Payload()}, pickled / "checkpoints" / "last.pt")
    return out


def dlx_runs(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    out = run_dlx("runs", f"root={root}", *args, cwd=root.parent)
    assert "Traceback" not in out.stdout + out.stderr, out.stderr
    assert not (root.parent / "PWNED").exists()
    return out


ALL = {"train/a", "multirun/s/0", "multirun/s/1", "old", "broken", "pickled"}


def test_lists_every_run_best_first(root):
    out = dlx_runs(root, "format=json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert {str(Path(r["run_dir"]).relative_to(root)) for r in rows} == ALL
    accs = [r["metrics"]["test/acc"] for r in rows if "test/acc" in r["metrics"]]
    assert accs == sorted(accs, reverse=True) and len(accs) == 5  # best first; broken last
    assert Path(rows[-1]["run_dir"]).name == "broken"
    by_dir = {str(Path(r["run_dir"]).relative_to(root)): r for r in rows}
    job = by_dir["multirun/s/1"]
    assert job["job"] == 1 and job["overrides"][-1] == "optimizer.lr=0.05"
    assert by_dir["train/a"]["overrides"] == [
        "debug=smoke",
        "viz.enabled=false",
        "optimizer.lr=0.01",
    ]
    assert by_dir["old"]["overrides"] == []  # made without Hydra: its metrics only
    assert all(by_dir[d]["status"] == "done" for d in ALL - {"broken"})
    assert by_dir["broken"]["status"] == "unfinished"
    for r in (by_dir["train/a"], by_dir["multirun/s/0"]):
        assert r["wall_time_s"] > 0 and r["when"][:2] == "20"
    # each damaged file: one warning line, naming it
    warned = sorted(out.stderr.splitlines())
    broken = root / "broken"
    assert warned == [  # the python/object tag is an error of the safe loader, not a call
        f"warning: skipped {broken / '.hydra' / 'config.yaml'}: not a readable config "
        "(ConstructorError)",
        f"warning: skipped {broken / '.hydra' / 'overrides.yaml'}: not a readable config "
        "(ParserError)",
        f"warning: skipped {broken / 'metrics.csv'}: not a metrics table (ValueError)",
        f"warning: skipped {broken / 'metrics.json'}: not a JSON file (JSONDecodeError)",
    ]
    # the same runs as a table and as CSV, in the same order
    table = dlx_runs(root)
    assert table.returncode == 0
    assert (
        "6 of 6 runs under" in table.stdout and "sorted by test/acc (higher first)" in table.stdout
    )
    for run_dir in ALL:
        assert f" {run_dir} " in table.stdout
    as_csv = list(csv.DictReader(io.StringIO(dlx_runs(root, "format=csv").stdout)))
    assert [r["run_dir"] for r in as_csv] == [r["run_dir"] for r in rows]


def test_where_sort_and_limit(root):
    out = dlx_runs(root, "where=[optimizer.lr:0.05,status:done]", "format=json")
    assert [Path(r["run_dir"]).name for r in json.loads(out.stdout)] == ["1"]
    # comparisons need quotes; config keys (the single run's lr is only in its config)
    out = dlx_runs(root, "where='optimizer.lr>=0.01'", "sort=test/loss", "format=json")
    rows = json.loads(out.stdout)
    assert {str(Path(r["run_dir"]).relative_to(root)) for r in rows} == {"train/a", "multirun/s/1"}
    losses = [r["metrics"]["test/loss"] for r in rows]
    assert losses == sorted(losses)  # losses: lowest first
    out = dlx_runs(root, "sort=test/acc:asc", "limit=2", "format=json")
    assert [Path(r["run_dir"]).name for r in json.loads(out.stdout)][:1] == ["pickled"]
    bad = dlx_runs(root, "where=acc")
    assert bad.returncode == 2 and bad.stderr.startswith("error: where='acc' is not a condition")


def test_compare_draws_the_curves_and_names_the_keys_that_differ(root, tmp_path):
    png = tmp_path / "cmp.png"
    out = dlx_runs(root, "compare=[multirun/s,train/a,pickled]", f"out={png}")
    assert out.returncode == 0, out.stderr
    assert png_size(png) == (1000, 450)  # two panels (loss, acc) of 5 x 4.5 inches
    lines = out.stdout.splitlines()
    lr = next(line for line in lines if line.startswith("│ optimizer.lr"))
    assert [c.strip() for c in lr.split("│")[2:5]] == ["0.0010", "0.0500", "0.0100"]
    assert not any(line.startswith("│ seed ") for line in lines)  # the same in all
    assert f"  0: {root / 'multirun' / 's' / '0'}" in lines
    # the checkpoint's pickle is refused, not run; its run is compared without a config
    assert "warning: skipped" in out.stderr and "last.pt" in out.stderr
    assert not (root.parent / "PWNED").exists() and not Path("PWNED").exists()


def test_cli(root, tmp_path):
    out = run_dlx("--help")
    assert "  runs " in out.stdout
    # listing reads files only: no torch, no matplotlib (a second, not ten)
    code = (
        "import sys; from dlx.cli import main; main(['runs', 'root=" + str(root) + "', "
        "'format=csv']); assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules"
    )
    light = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert light.returncode == 0, light.stderr
    out = run_dlx("runs", "--help")
    assert "  root: outputs  # the folder whose runs" in out.stdout
    assert "trainer." not in out.stdout.split("== Settings")[1]  # it composes no trainer
    missing = run_dlx("runs", f"root={tmp_path / 'none'}")
    assert missing.returncode == 2
    none = tmp_path / "none"
    assert (
        missing.stderr
        == f"error: dlx runs: root={none} is not a folder; give root=<outputs folder>\n"
    )
    empty = run_dlx("runs", f"root={tmp_path}", cwd=tmp_path)
    assert empty.returncode == 0 and empty.stdout == f"no runs under {tmp_path}\n"
    assert list(tmp_path.iterdir()) == []  # writes nothing: no run dir, no log
