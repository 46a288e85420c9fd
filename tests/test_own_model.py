"""A user's own model, data set, optimizer and part of the loop: each a class in their
package (an optimizer: not even that) plus a YAML in their config folder, no other edit."""

from __future__ import annotations

import json
import textwrap

from tests.conftest import run_dlx

MODULE = """
from torch import nn

class Tiny(nn.Module):
    def __init__(self, spec, width: int = 8):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(spec.input_size, width), nn.ReLU(),
                                 nn.Linear(width, spec.num_classes))

    def forward(self, x):
        return self.net(x)
"""

YAML = """
_target_: mypkg.tiny.Tiny
width: 24
"""

DATASET = """
import torch

from dlx.core.data import Spec, Split
from dlx.data.base import Dataset


class Blobs(Dataset):
    name = "blobs"

    def __init__(self, n: int = 300, **kwargs):
        super().__init__(**kwargs)
        self.n = n

    @property
    def source_spec(self):
        return Spec(input_shape=(2,), num_classes=3, class_names=("a", "b", "c"))

    def read(self):
        g = torch.Generator().manual_seed(0)
        y = torch.randint(0, 3, (self.n,), generator=g)
        centers = torch.tensor([[0.0, 4.0], [4.0, -4.0], [-4.0, -4.0]])
        x = centers[y] + torch.randn(self.n, 2, generator=g)
        cut = self.n * 4 // 5
        return Split(x[:cut], y[:cut]), Split(x[cut:], y[cut:])
"""

PART = """
import json

from dlx.engine.parts import Part


class CountSteps(Part):
    def __init__(self, filename: str = "counted.json"):
        self.filename, self.steps, self.epochs = filename, 0, 0

    def on_train_batch_end(self, trainer, loss):
        self.steps += trainer.boundary

    def on_train_epoch_end(self, trainer, row):
        self.epochs += 1

    def on_fit_end(self, trainer):
        out = {"steps": self.steps, "epochs": self.epochs, "state_step": trainer.state.step}
        (trainer.run_dir / self.filename).write_text(json.dumps(out))
"""

FILES = {
    "mypkg/__init__.py": "",
    "mypkg/tiny.py": MODULE,
    "mypkg/blobs.py": DATASET,
    "mypkg/count.py": PART,
    "conf/model/tiny.yaml": YAML,
    "conf/dataset/blobs.yaml": "_target_: mypkg.blobs.Blobs\nn: 400\n",
    "conf/optimizer/adamw.yaml": "_target_: torch.optim.AdamW\nlr: 0.01\nweight_decay: 0.01\n",
    "conf/callbacks/count.yaml": "count:\n  _target_: mypkg.count.CountSteps\n",
}


def test_a_model_data_set_optimizer_and_part_of_ones_own(tmp_path, cli_env):
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    env = {**cli_env, "PYTHONPATH": str(tmp_path), "DLX_ALLOW_TARGETS": "mypkg.*"}
    common = [f"hydra.searchpath=[file://{tmp_path / 'conf'}]"]
    for name, choice in [
        ("model", ["model=tiny", "debug=smoke"]),
        ("dataset", ["dataset=blobs", "debug=smoke"]),
        ("optimizer", ["optimizer=adamw", "debug=smoke"]),
        ("callbacks", ["callbacks=[count]", "debug=smoke"]),
        (
            "all",
            [
                "model=tiny",
                "dataset=blobs",
                "optimizer=adamw",
                "callbacks=[count]",
                "trainer.max_epochs=3",
            ],
        ),
    ]:
        run_dir = tmp_path / name
        out = run_dlx("train", *common, *choice, f"hydra.run.dir={run_dir}", env=env)
        assert out.returncode == 0, f"{name}: {out.stderr}"
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert "test/acc" in metrics, name
    assert metrics["test/acc"] > 0.9  # separable blobs, 3 real epochs
    assert metrics["num_params"] == 2 * 24 + 24 + 24 * 3 + 3
    counted = json.loads((tmp_path / "all" / "counted.json").read_text())
    assert counted == {"steps": 3 * 10, "epochs": 3, "state_step": 30}  # 320 train / 32


def test_model_from_a_package_outside_dlx(tmp_path, cli_env):
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "tiny.py").write_text(textwrap.dedent(MODULE))
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "tiny.yaml").write_text(YAML)
    args = [
        "train",
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
        "model=tiny",
        "trainer.max_epochs=2",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    env = {**cli_env, "PYTHONPATH": str(tmp_path)}

    refused = run_dlx(*args, env=env)
    assert refused.returncode == 2
    assert (
        "mypkg.tiny.Tiny is not allowed" in refused.stderr and "DLX_ALLOW_TARGETS" in refused.stderr
    )

    out = run_dlx(*args, env={**env, "DLX_ALLOW_TARGETS": "mypkg.*"})
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["num_params"] == 64 * 24 + 24 + 24 * 10 + 10
    assert metrics["test/acc"] > 0.5


def test_a_bug_in_a_users_model_gets_hydras_report_not_a_config_error(tmp_path, cli_env):
    # dlx asks Hydra to re-raise while it composes (to print a bad override in one line);
    # inside the job that is off again, so a user's bug keeps Hydra's usual short report.
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    buggy = MODULE.replace("return self.net(x)", "raise RuntimeError('boom in forward')")
    (tmp_path / "mypkg" / "tiny.py").write_text(textwrap.dedent(buggy))
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "tiny.yaml").write_text(YAML)
    env = {**cli_env, "PYTHONPATH": str(tmp_path), "DLX_ALLOW_TARGETS": "mypkg.*"}
    out = run_dlx(
        "train",
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
        "model=tiny",
        f"hydra.run.dir={tmp_path / 'run'}",
        env=env,
    )
    assert out.returncode == 1
    assert "RuntimeError: boom in forward" in out.stderr
    assert "Set the environment variable HYDRA_FULL_ERROR=1" in out.stderr
    assert "error: " not in out.stderr
