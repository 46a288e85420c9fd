"""torch._dynamo deferred (engine/lazy_dynamo.py): eager training without it, and everything
that needs it afterwards gets the real module. Fresh interpreters: the test process may have
imported torch._dynamo already."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.conftest import run_dlx

# Trains the same small model twice: before the real module is loaded (stand-ins answer
# torch.optim) and after (a submodule import, then torch.compile), and prints what it saw.
SCRIPT = """
import json, sys, torch
from dlx.engine import lazy_dynamo

assert lazy_dynamo.defer()
assert lazy_dynamo.defer()  # idempotent

def train():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
        sched.step()
    opt.load_state_dict(opt.state_dict())
    return torch.cat([p.detach().flatten() for p in m.parameters()])

zero_grad = torch.optim.Optimizer.zero_grad.__wrapped__
out = {}
eager = train()
out["deferred_after_training"] = lazy_dynamo.is_deferred()
out["dynamo_code_ran"] = "torch._dynamo.convert_frame" in sys.modules
out["stand_in_cached"] = zero_grad.__dict__.get("__dynamo_disable") is zero_grad

from torch._dynamo.backends.registry import lookup_backend  # the package's code runs first
import torch._dynamo

registry = sys.modules["torch._dynamo.backends.registry"]
out["deferred_after_import"] = lazy_dynamo.is_deferred()
out["one_registry_module"] = registry.lookup_backend is lookup_backend
out["registry_spec"] = registry.__spec__.origin
out["real_disable"] = torch._dynamo.disable.__module__
out["stand_in_cache_undone"] = "__dynamo_disable" not in zero_grad.__dict__
out["same_result"] = torch.equal(eager, train())
out["real_disable_cached"] = zero_grad.__dict__.get("__dynamo_disable") not in (None, zero_grad)
f = torch.compile(lambda t: torch.sin(t) * 2, backend="eager")
out["compiled"] = torch.allclose(f(torch.ones(3)), torch.sin(torch.ones(3)) * 2)
print(json.dumps(out))
"""


def test_eager_training_leaves_dynamo_unrun_and_the_real_module_takes_over_after():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    # torch.optim's disable() and graph_break() were answered without running dynamo's code
    assert out["deferred_after_training"] is True
    assert out["dynamo_code_ran"] is False
    assert out["stand_in_cached"] is True
    # a submodule import ran the package first, loaded that submodule once, kept its spec
    assert out["deferred_after_import"] is False
    assert out["one_registry_module"] is True
    assert out["registry_spec"].endswith("torch/_dynamo/backends/registry.py")
    # the real module took over: its disable(), re-asked by torch.optim, and the same numbers
    assert out["real_disable"] == "torch._dynamo.decorators"
    assert out["stand_in_cache_undone"] is True
    assert out["same_result"] is True
    assert out["real_disable_cached"] is True
    assert out["compiled"] is True


def test_dlx_train_reaches_its_first_step_without_running_dynamo(cli_env, tmp_path):
    env = dict(cli_env, PYTHONPROFILEIMPORTTIME="1")
    run_dir = tmp_path / "run"
    out = run_dlx("train", "debug=smoke", f"hydra.run.dir={run_dir}", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    # The import log is there, and torch is in it (at whatever depth: the config's targets
    # are resolved while it is composed, so a dlx module may import it first).
    assert re.search(r"\|\s+torch\n", out.stderr)
    assert "torch._dynamo.convert_frame" not in out.stderr
    assert "torch._dynamo.eval_frame" not in out.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] >= 1
