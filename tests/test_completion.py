"""Shell completion: the query as bash and zsh make it (COMP_LINE/COMP_POINT), the bash
script run by a real bash, Hydra's -sc flag, and the user's own config folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlx.cli import COMMANDS
from dlx.complete import answer, complete
from tests.conftest import DLX, run_dlx

BIN = str(Path(DLX).parent)


def query(monkeypatch, line: str, shell: str = "bash") -> list[str]:
    """What `dlx --complete <shell>` answers with the cursor at the end of `line`."""
    monkeypatch.setenv("COMP_LINE", line)
    monkeypatch.setenv("COMP_POINT", str(len(line)))
    monkeypatch.delenv("COMP_WORDBREAKS", raising=False)  # bash's default
    return answer(shell, COMMANDS).splitlines()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("dlx ", ["--completion", "--help", "--version", *sorted(COMMANDS)]),
        ("dlx tr", ["train"]),
        ("dlx train mod", ["model.", "model="]),
        ("dlx train trainer.max", ["trainer.max_epochs="]),
        ("dlx train model=c", ["cnn"]),  # bash keeps `model=`: only the rest
        ("dlx train logger=[csv,te", ["[csv,tensorboard"]),
        ("dlx train -m model=mlp,c", ["mlp,cnn"]),
        ("dlx train hydra/launcher=jo", ["joblib"]),
        ("dlx train trainer.compile=", ["false", "true"]),
        ("dlx train trainer.precision=b", ["bf16-mixed"]),
        ("dlx eval sp", ["split="]),
        ("dlx eval split=", ["test", "train", "val"]),
        ("dlx train --cfg ", ["all", "hydra", "job"]),
        ("dlx train +trainer.max", ["+trainer.max_epochs="]),
        ("dlx --completion ", ["bash", "zsh"]),
        ("dlx train ckpt=out", []),  # a path: the shell completes file names
    ],
)
def test_bash_query(monkeypatch, line, expected):
    assert query(monkeypatch, line) == expected


def test_options_keys_and_the_cursor(monkeypatch):
    found = query(monkeypatch, "dlx train model=")
    assert {"mlp", "cnn", "lstm", "sklearn_mlp"} <= set(found)
    assert "experiment=" in query(monkeypatch, "dlx train ")
    assert "book/6_9_mlp_mnist" in query(monkeypatch, "dlx train experiment=book/6_9")
    # the keys of the option chosen on the line (cnn's filters), and the schema's (init_from)
    keys = query(monkeypatch, "dlx train model=cnn model.")
    assert "model.filters=" in keys and "model.init_from=" in keys
    assert "model.filters=" not in query(monkeypatch, "dlx train model.")  # the default, mlp
    assert "logger.wandb.project=" in query(monkeypatch, "dlx train logger=wandb logger.wandb.")
    # zsh too gets the value (its script sets `model=` aside)
    assert query(monkeypatch, "dlx train model=c", "zsh") == ["cnn"]
    assert query(monkeypatch, "dlx train logger=[csv,t", "zsh") == ["[csv,tensorboard"]
    assert query(monkeypatch, "dlx train 'logger=[csv,t") == ["[csv,tensorboard"]  # bash
    # the cursor in the middle of the line: what is before it counts
    line = "dlx train mod trainer.max_epochs=3"
    monkeypatch.setenv("COMP_POINT", str(len("dlx train mod")))
    monkeypatch.setenv("COMP_LINE", line)
    assert answer("bash", COMMANDS).split() == ["model.", "model="]


def test_own_config_folder_on_the_search_path_and_nothing_of_it_runs(monkeypatch, tmp_path):
    conf = tmp_path / "conf"
    (conf / "model").mkdir(parents=True)
    (conf / "model" / "tiny.yaml").write_text("_target_: mypkg.Tiny\nwidth: 8\n")
    # a YAML that would run a command if loaded unsafely, and a package that would if imported
    (conf / "model" / "evil.yaml").write_text(
        f"width: !!python/object/apply:os.system ['touch {tmp_path / 'pwned'}']\n"
    )
    (tmp_path / "evilpkg").mkdir()
    (tmp_path / "evilpkg" / "__init__.py").write_text(
        f"open({str(tmp_path / 'imported')!r}, 'w').close()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    search = f"hydra.searchpath=[file://{conf},pkg://evilpkg]"
    assert query(monkeypatch, f"dlx train {search} model=ti") == ["tiny"]
    assert "model.width=" in query(monkeypatch, f"dlx train {search} model=tiny model.")
    assert query(monkeypatch, f"dlx train {search} model=evil model.w") == []
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "imported").exists()
    assert "evilpkg" not in sys.modules


def test_the_cli_answers_fast_without_torch_or_hydra(cli_env):
    # What the shell runs on TAB: the installed entry point, the line in the environment.
    code = (
        "import sys, os; from dlx.cli import main; main(['--complete', 'bash']); "
        "print([m for m in ('torch', 'hydra') if m in sys.modules], file=sys.stderr)"
    )
    env = {**cli_env, "COMP_LINE": "dlx train model=", "COMP_POINT": "16"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "cnn" in out.stdout.split()
    assert out.stderr.strip() == "[]"
    t0 = time.monotonic()
    out = run_dlx("--complete", "bash", env=env)
    took = time.monotonic() - t0
    assert "cnn" in out.stdout.split()
    assert took < 2.0, took  # ~0.2 s here; the bound only catches a heavy import


def bash(script: str, env: dict[str, str]) -> str:
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_script_in_a_real_bash(cli_env):
    env = {**cli_env, "PATH": f"{BIN}{os.pathsep}{cli_env['PATH']}"}
    # bash splits `model=c` into model, =, c; the function answers for the last
    call = """
    eval "$(dlx --completion bash)"
    complete -p dlx
    COMP_LINE='dlx train model=c'; COMP_POINT=${#COMP_LINE}
    COMP_WORDS=(dlx train model = c); COMP_CWORD=4
    _dlx_complete; printf 'reply:%s\\n' "${COMPREPLY[@]}"
    COMP_LINE='dlx train mo'; COMP_POINT=${#COMP_LINE}; COMP_WORDS=(dlx train mo); COMP_CWORD=2
    _dlx_complete; printf 'reply:%s\\n' "${COMPREPLY[@]}"
    """
    lines = bash(call, env).splitlines()
    assert lines[0] == "complete -o default -F _dlx_complete dlx"
    assert lines[1:] == ["reply:cnn", "reply:model.", "reply:model="]
    # Hydra's own install line gives the same script, and its query whole words
    assert (
        run_dlx("train", "-sc", "install=bash", env=env).stdout
        == run_dlx("--completion", "bash", env=env).stdout
    )
    hydra_query = run_dlx(
        "-sc", "query=bash", env={**env, "COMP_LINE": "dlx train model=c", "COMP_POINT": "17"}
    )
    assert hydra_query.stdout.split() == ["model=cnn"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="no zsh")
def test_zsh_script_loads(cli_env):
    env = {**cli_env, "PATH": f"{BIN}{os.pathsep}{cli_env['PATH']}"}
    out = subprocess.run(
        ["zsh", "-f", "-c", 'eval "$(dlx --completion zsh)"; print -r -- $_comps[dlx]'],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "_dlx"


def test_unknown_shell_is_one_line(cli_env):
    out = run_dlx("--completion", "fish", env=cli_env)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "dlx --completion bash" in out.stderr
    assert complete(["nosuchcommand"], "x", COMMANDS) == []
