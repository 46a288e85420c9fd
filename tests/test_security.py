"""Configs cannot run code: each way a config, a command line or a file could, tried for real.

Every case runs the real `dlx` with a payload that would create a marker file (through
`os.system`, a pickle, a subprocess or an import) and asserts that the command was refused
in one line, exited non-zero and that the marker does not exist.
"""

from __future__ import annotations

import os
import pickle
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from tests.conftest import run_dlx
from tests.runs import resave


class Payload:
    """Unpickling this creates the file `PWNED` in the working directory."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


EVIL = "{files}/evil.pt"  # a torch file holding Payload
LOAD = f"f: {EVIL}, weights_only: false"

# Experiment YAMLs an attacker could share (placed on hydra.searchpath as experiment/<name>).
EXPERIMENTS = {
    "callback": f"""
        # @package _global_
        hydra:
          callbacks:
            evil: {{_target_: dlx.engine.checkpoint.torch.load, {LOAD}}}
    """,
    "log_factory": f"""
        # @package _global_
        hydra:
          job_logging:
            handlers:
              evil: {{"()": dlx.engine.checkpoint.torch.load, {LOAD}}}
            root: {{handlers: [evil]}}
    """,
    "log_class": """
        # @package _global_
        hydra:
          job_logging:
            handlers:
              evil: {class: subprocess.Popen, args: "touch PWNED", shell: true}
            root: {handlers: [evil]}
    """,
    "log_ext": """
        # @package _global_
        hydra:
          job_logging:
            handlers:
              console: {class: logging.StreamHandler, stream: "ext://os.system"}
    """,
    "oc_create": f"""
        # @package _global_
        task:
          extra: "${{oc.create:'{{_target_: dlx.engine.checkpoint.torch.load, {LOAD}}}'}}"
    """,
    "escaped": r"""
        # @package _global_
        model:
          extra: '\${oc.create:"{_target_: os.system, command: touch PWNED}"}'
    """,
    "later": """
        # @package _global_
        model:
          extra: "${oc.decode:${hydra:runtime.output_dir}}"
    """,
    "stage": """
        # @package _global_
        stages:
          - name: one
            overrides:
              model: {_target_: dlx.engine.runtime.os.system, command: touch PWNED}
    """,
    "env_set": """
        # @package _global_
        hydra:
          job:
            env_set: {PYTHONSTARTUP: evil.py, LD_PRELOAD: /tmp/evil.so}
    """,
}

# (arguments, environment additions, words the one error line must contain)
CASES: list[tuple[list[str], dict[str, str], str]] = [
    # The spelling is dlx.*, the object is torch.load / numpy.load / torch.hub.load / os.system.
    (
        ["model._target_=dlx.engine.checkpoint.torch.load", f"+model.f={EVIL}",
         "+model.weights_only=false"],
        {}, "it is torch.serialization.load",
    ),
    (
        ["model._target_=dlx.data.digits.np.load", f"+model.file={EVIL}",
         "+model.allow_pickle=true"],
        {}, "model._target_=dlx.data.digits.np.load is not allowed",
    ),
    (
        ["optimizer._target_=dlx.engine.checkpoint.torch.hub.load", "+optimizer.repo_or_dir=."],
        {}, "from torch.hub",
    ),
    (["model._target_=dlx.engine.runtime.os.system", "+model.command='touch PWNED'"], {},
     "from posix"),
    (["model._target_=os.system", "+model.command='touch PWNED'"], {}, "is not allowed"),
    (["model._target_=builtins.exec"], {}, "is not allowed"),
    (["model._target_=dlx.__main__.main"], {}, "is not allowed"),
    (["model._target_=dlx.core.io.write_json"], {}, "not a class dlx builds"),
    # Hydra builds these itself, before any task function runs.
    ([f"+hydra.callbacks.evil={{_target_:dlx.engine.checkpoint.torch.load,f:'{EVIL}',"
      "weights_only:false}"], {}, "hydra.callbacks.evil._target_"),
    (["experiment=callback"], {}, "hydra.callbacks.evil._target_"),
    (["experiment=log_factory"], {}, "hydra.job_logging.handlers.evil.()"),
    (["experiment=log_class"], {}, "hydra.job_logging.handlers.evil.class=subprocess.Popen"),
    (["experiment=log_ext"], {}, "ext://os.system is not allowed"),
    # --help sets up Hydra's logging from the composed config too.
    (["--help", "+hydra.hydra_logging.handlers.x={class:subprocess.Popen,args:'touch PWNED',"
      "shell:true}"], {}, "hydra.hydra_logging.handlers.x.class=subprocess.Popen"),
    (["-m", "+hydra.launcher.evil={_target_:dlx.engine.runtime.os.system,command:'touch PWNED'}"],
     {}, "hydra.launcher.evil._target_"),
    (["-m", "hydra/launcher=slurm", "hydra.launcher.setup=['touch PWNED']"], {},
     "hydra.launcher.setup runs shell commands"),
    (["hparams_search=digits_optuna", "hydra.sweeper.sampler._target_=dlx.engine.runtime.os.system",
      "+hydra.sweeper.sampler.command='touch PWNED'"], {}, "hydra.sweeper.sampler._target_"),
    (["experiment=env_set"], {}, "hydra.job.env_set"),
    (["+hydra.job.env_set.DLX_ALLOW_TARGETS='*'"], {}, "hydra.job.env_set.DLX_ALLOW_TARGETS"),
    # The C compiler dlx runs to build its LSTM loop (models/native_build.py) is the user's.
    (["model=lstm", "dataset=imdb", "model.recurrent_dropout=0.2",
      "+hydra.job.env_set.CC={files}/evil-cc"], {}, "hydra.job.env_set.CC"),
    # Interpolations that hide a target until the config is resolved.
    (["experiment=oc_create"], {}, "it is torch.serialization.load"),
    (["experiment=escaped"], {}, "resolves to another interpolation"),
    (["experiment=later"], {}, "cannot be checked before it is used"),
    (["experiment=stage"], {}, "stages[0].overrides.model._target_"),
    # Flags and search paths that unpickle or import.
    (["--experimental-rerun", "{files}/config.pickle"], {}, "--experimental-rerun is not"),
    (["hydra.searchpath=[pkg://evilpkg]"], {"PYTHONPATH": "{files}"}, "would import evilpkg"),
    # The environment can widen the allow-list for the user's own package, not for anything.
    (["model._target_=os.system", "+model.command='touch PWNED'"], {"DLX_ALLOW_TARGETS": "*"},
     "DLX_ALLOW_TARGETS='*' would allow targets from any package"),
    (["model._target_=os.system"], {"DLX_ALLOW_TARGETS": "os.*"}, "dlx never allows it"),
    (
        ["model._target_=torch.load", f"+model.f={EVIL}", "+model.weights_only=false"],
        {"DLX_ALLOW_TARGETS": "torch.*"}, "from torch.serialization",
    ),
    (
        ["model._target_=mypkg.torch.load", f"+model.f={EVIL}", "+model.weights_only=false"],
        {"DLX_ALLOW_TARGETS": "mypkg.*", "PYTHONPATH": "{files}"}, "from torch.serialization",
    ),
]  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("attacker")
    torch.save({"x": Payload()}, d / "evil.pt")
    (d / "config.pickle").write_bytes(pickle.dumps(Payload()))
    (d / "evilpkg").mkdir()
    (d / "evilpkg" / "__init__.py").write_text("import os\nos.system('touch PWNED')\n")
    (d / "mypkg").mkdir()
    (d / "mypkg" / "__init__.py").write_text("import torch\n")
    conf = d / "conf" / "experiment"
    conf.mkdir(parents=True)
    for name, text in EXPERIMENTS.items():
        body = textwrap.dedent(text).replace("{files}", str(d))
        (conf / f"{name}.yaml").write_text(body)
    evil_cc = d / "evil-cc"  # a "compiler" that would leave PWNED if dlx ran it
    evil_cc.write_text(f"#!/bin/sh\ntouch {d / 'PWNED'}\nexit 1\n")
    evil_cc.chmod(0o755)
    return d


def _attempt(i: int, case, tmp_path: Path, files: Path, cli_env: dict[str, str]):
    args, extra_env, _ = case
    case_dir = tmp_path / f"case{i}"
    case_dir.mkdir()
    args = [a.replace("{files}", str(files)) for a in args]
    search = f"hydra.searchpath=[file://{files / 'conf'}]"
    if not any(a.startswith("hydra.searchpath") for a in args):
        args.append(search)
    args += [f"hydra.run.dir={case_dir / 'run'}", f"hydra.sweep.dir={case_dir / 'sweep'}"]
    env = {**cli_env, **{k: v.replace("{files}", str(files)) for k, v in extra_env.items()}}
    flags = [a for a in args[:2] if a.startswith("-")]  # -m and its kind come first
    if flags == ["--experimental-rerun"]:
        flags = args[:2]
    rest = args[len(flags) :]
    out = run_dlx("train", *flags, "debug=smoke", *rest, env=env, cwd=case_dir)
    return case_dir, args, out


def test_configs_cannot_run_code(tmp_path, files, cli_env):
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda c: _attempt(*c, tmp_path, files, cli_env), enumerate(CASES)))
    problems = []
    for (case_dir, args, out), (_, _, words) in zip(results, CASES, strict=True):
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
        why = []
        if out.returncode == 0:
            why.append("exit 0")
        if (case_dir / "PWNED").exists() or (files / "PWNED").exists():
            why.append("THE PAYLOAD RAN")
        if len(lines) != 1 or not lines[0].startswith("error: "):
            why.append(f"not one 'error:' line: {out.stderr[-800:]!r}")
        elif words not in lines[0]:
            why.append(f"{words!r} not in {lines[0]!r}")
        if (case_dir / "run").exists():
            why.append("a run dir was created")
        if why:
            problems.append(f"{' '.join(args[:4])}: {'; '.join(why)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "command",
    [
        ["info", "model._target_=dlx.engine.runtime.os.system", "+model.command='touch PWNED'"],
        ["data", "dataset._target_=dlx.engine.runtime.os.system", "+dataset.command='touch PWNED'"],
        ["data", "hydra.searchpath=[pkg://evilpkg]"],
        ["predict", "ckpt=x.pt", "input=y", "hydra.searchpath=[pkg://evilpkg]"],
        ["export", "ckpt=x.pt", "+hydra.callbacks.evil._target_=dlx.engine.runtime.os.system"],
    ],
)
def test_every_command_checks_its_config(command, tmp_path, files, cli_env):
    # evilpkg importable, and the dlx under test still the one PYTHONPATH names
    path = [str(files), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**cli_env, "PYTHONPATH": os.pathsep.join(path)}
    out = run_dlx(*command, env=env, cwd=tmp_path)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "is not allowed" in lines[0] or "would import evilpkg" in lines[0]
    assert not (tmp_path / "PWNED").exists() and not (files / "PWNED").exists()


def test_allowed_targets_still_build(tmp_path, files, cli_env):
    # What the refusals must not break: a scheduler and an sklearn estimator by _target_,
    # Hydra's own callbacks, and a user's package through DLX_ALLOW_TARGETS.
    from dlx.core import targets

    for ok in (
        "torch.optim.lr_scheduler.StepLR",
        "torch.nn.Linear",
        "sklearn.linear_model.LogisticRegression",
        "hydra.experimental.callbacks.LogJobReturnCallback",
        "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
        "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
        "optuna.samplers.TPESampler",
        "logging.StreamHandler",
        "dlx.models.mlp.MLP",
    ):
        targets.check_target(ok, "x._target_")
    for bad in (
        "sklearn.datasets.fetch_openml",
        "torch.nn.init.normal_",
        "logging.config.dictConfig",
    ):
        with pytest.raises(targets.ConfigError):
            targets.check_target(bad, "x._target_")


def test_a_checkpoints_stored_config_is_checked_by_eval_and_viz(tmp_path, cli_env):
    run = tmp_path / "run"
    out = run_dlx("train", "debug=smoke", f"hydra.run.dir={run}", env=cli_env)
    assert out.returncode == 0, out.stderr
    ckpt_path = run / "checkpoints" / "last.pt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    ckpt["config"]["task"] = {"_target_": "dlx.engine.runtime.os.system", "command": "touch PWNED"}
    resave(ckpt, ckpt_path)
    for command in (
        ["eval", f"ckpt={ckpt_path}", f"hydra.run.dir={tmp_path / 'eval'}"],
        ["viz", f"run_dir={run}"],
    ):
        out = run_dlx(*command, env=cli_env, cwd=tmp_path)
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
        assert out.returncode != 0, command
        assert len(lines) == 1 and "task._target_=dlx.engine.runtime.os.system" in lines[0], (
            out.stderr
        )
        assert not (tmp_path / "PWNED").exists()
