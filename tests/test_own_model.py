"""A user's own model: a class in their package plus a YAML in their config folder."""

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
init_from: null
freeze: []
"""


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
