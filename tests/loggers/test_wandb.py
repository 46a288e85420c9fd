"""logger=wandb: real offline W&B runs (no API key, no network), read back from the run's
own `.wandb` file with wandb's record types."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest

from dlx.compose import compose
from dlx.core.errors import ConfigError
from tests.runs import train

# An optional extra (dlx[wandb]); `make install` installs it, so CI runs these tests.
pytest.importorskip("wandb")

COMMON = (
    "dataset=digits",
    "trainer.limit_train_batches=4",
    "trainer.log_every_n_steps=2",
    "viz.enabled=false",
)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """As on a machine that never ran `wandb login`: no key, no netrc, no mode set; wandb's
    own settings and caches in the test's folder."""
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no.netrc"))
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))


def records(path: Path) -> list:
    """The records of a `.wandb` file: a 7-byte header (':W&B', magic, version), then
    LevelDB's log format (32 KiB blocks of chunks: crc32c, length, type; FULL=1, FIRST=2,
    MIDDLE=3, LAST=4), each record a wandb_internal_pb2.Record."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    out, pos, parts = [], 7, b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 2):
            parts = chunk
        elif kind in (3, 4):
            parts += chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(parts)
            out.append(record)
    return out


def read_runs(run_dir: Path) -> list[dict]:
    """Each offline run under the run dir, oldest first: id, config, history rows, summary,
    metrics charted against another, whether it finished."""
    runs = []
    for folder in sorted((run_dir / "wandb").glob("offline-run-*")):
        (path,) = folder.glob("run-*.wandb")
        run = {"dir": folder, "history": [], "summary": {}, "axes": {}, "exit": None}
        for record in records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run["id"] = record.run.run_id
                run["project"] = record.run.project
                run["config"] = {u.key: json.loads(u.value_json) for u in record.run.config.update}
            elif kind == "history":
                row = {"/".join(i.nested_key) or i.key: json.loads(i.value_json)
                       for i in record.history.item}  # fmt: skip
                run["history"].append(row)
            elif kind == "summary":
                for u in record.summary.update:
                    run["summary"]["/".join(u.nested_key) or u.key] = json.loads(u.value_json)
            elif kind == "metric" and record.metric.step_metric:
                run["axes"][record.metric.name] = record.metric.step_metric
            elif kind == "exit":
                run["exit"] = record.exit.exit_code
        runs.append(run)
    return runs


def column(run: dict, key: str) -> list[tuple[int, float]]:
    return [(row["_step"], row[key]) for row in run["history"] if key in row]


def test_config_steps_epochs_summary_and_figures_offline(tmp_path):
    run_dir, metrics = train(
        tmp_path,
        *COMMON[:-1],
        "trainer.max_epochs=2",
        "optimizer.lr=0.002",
        "viz.figures=[learning_curves]",
        logger="[csv,wandb]",
    )
    saved = json.loads((run_dir / "wandb_run.json").read_text())
    assert saved["mode"] == "offline"  # no API key: offline, nothing sent anywhere
    (run,) = read_runs(run_dir)
    assert run["id"] == saved["id"] and run["project"] == "dlx"
    assert run["dir"].name.endswith(saved["id"])
    # the resolved config is the run's config
    assert run["config"]["optimizer"]["lr"] == 0.002
    assert run["config"]["trainer"]["max_epochs"] == 2
    assert run["config"]["model"]["_target_"] == "dlx.models.mlp.MLP"
    # the step losses at the optimizer step, equal to steps.csv's
    losses = column(run, "train/loss_step")
    assert [s for s, _ in losses] == [2, 4, 6, 8]
    steps_csv = (run_dir / "steps.csv").read_text().splitlines()[1:]
    assert [v for _, v in losses] == pytest.approx([float(r.split(",")[2]) for r in steps_csv])
    # each epoch's row at the step it ended, with its epoch number, charted against it
    assert column(run, "epoch") == [(4, 1), (8, 2)]
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    epoch_losses = [float(r.split(",")[header.index("train/loss")]) for r in rows[1:]]
    assert [v for _, v in column(run, "train/loss")] == pytest.approx(epoch_losses)
    assert run["axes"]["train/loss"] == "epoch" and "train/loss_step" not in run["axes"]
    # the final metrics as the summary, the figure as an image, a finished run
    assert run["summary"]["test/acc"] == pytest.approx(metrics["test/acc"])
    assert run["summary"]["num_params"] == metrics["num_params"]
    assert run["summary"]["plots/learning_curves/_type"] == "image-file"
    (image,) = run["dir"].glob("files/media/images/plots/learning_curves_*.png")
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert run["exit"] == 0


class Sent:
    """Stands in for a wandb run: what the logger sent it, and when."""

    def __init__(self):
        self.logged = []

    def log(self, values, step):
        self.logged.append((step, sorted(values)))

    def define_metric(self, name, step_metric=None):
        pass


@pytest.mark.parametrize("checkpoints", [True, False])
def test_numbers_go_out_when_a_checkpoint_covers_them(tmp_path, checkpoints):
    from dlx.loggers.wandb import WandbLogger

    logger = WandbLogger(tmp_path, config={"trainer": {"checkpoint": checkpoints}})
    logger.run = sent = Sent()
    logger.log_losses(2, 1, [1.0, 3.0])
    logger.log_epoch({"epoch": 1.0, "train/loss": 2.0}, 2)
    if checkpoints:
        assert sent.logged == []  # held back: a kill now would lose them with the epoch
        logger.flush()  # the trainer writes last.pt
    assert sent.logged == [(2, ["train/loss_step"]), (2, ["epoch", "train/loss"])]
    logger.log_losses(4, 2, [5.0])
    # killed here: W&B got only what the checkpoint covers (without checkpoints, all of it:
    # there is nothing to resume from)
    assert [s for s, _ in sent.logged] == ([2, 2] if checkpoints else [2, 2, 4])


def test_a_resumed_run_continues_its_wandb_run_a_fresh_one_does_not(tmp_path):
    run_dir, _ = train(tmp_path, *COMMON, "trainer.max_epochs=1", logger="wandb")
    first = json.loads((run_dir / "wandb_run.json").read_text())["id"]
    train(tmp_path, *COMMON, "trainer.max_epochs=2", "trainer.resume=auto", logger="wandb")
    runs = read_runs(run_dir)
    assert [r["id"] for r in runs] == [first, first]  # one W&B run, in two sittings
    assert [s for s, _ in column(runs[0], "train/loss_step")] == [2, 4]
    assert [s for s, _ in column(runs[1], "train/loss_step")] == [6, 8]
    assert [column(r, "epoch") for r in runs] == [[(4, 1)], [(8, 2)]]
    assert [r["exit"] for r in runs] == [0, 0]
    # a fresh run in the same folder is a new W&B run
    train(tmp_path, *COMMON, "trainer.max_epochs=1", logger="wandb")
    assert json.loads((run_dir / "wandb_run.json").read_text())["id"] != first


def test_mode_offline_without_a_key_online_with_one(tmp_path, monkeypatch):
    from dlx.loggers.wandb import resolve_mode

    assert resolve_mode(None) == "offline"
    netrc = tmp_path / "no.netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    netrc.chmod(0o600)
    assert resolve_mode(None) == "online"  # `wandb login` wrote the key there
    netrc.unlink()
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert resolve_mode(None) == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode(None) == "disabled"
    assert resolve_mode("offline") == "offline"  # logger.wandb.mode wins


def test_missing_library_names_the_extra(monkeypatch):
    from dlx.command import check

    cfg = compose("train", ["logger=[csv,wandb]"])
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"logger=wandb needs wandb.*pip install 'dlx\[wandb\]'"):
        check(cfg, None)
