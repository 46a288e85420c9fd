"""Bad invocations of the real CLI: each exits non-zero with one clear line, no traceback,
and leaves no checkpoint, cache or temp file behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from dlx.core.data import Spec
from dlx.models.mlp import MLP
from tests.conftest import DLX, run_dlx


class Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("files")
    good = {"model": MLP(Spec((1, 8, 8), 10), hidden=[32]).state_dict(), "epoch": 1}
    torch.save(good, d / "other_model.pt")
    (d / "corrupt.pt").write_bytes(b"this is not a checkpoint at all")
    (d / "truncated.pt").write_bytes((d / "other_model.pt").read_bytes()[:2000])
    torch.save({"model": {}, "payload": Evil()}, d / "evil.pt")
    torch.save(torch.zeros(3), d / "tensor.pt")  # loads, but is no dlx checkpoint
    (d / "a_file").write_text("x")
    return {p.name: p for p in d.iterdir()}


# (arguments, words the error line must contain)
CASES: list[tuple[list[str], str]] = [
    (["model=nope"], "Could not find 'model/nope'"),
    (["optimizer=adamw2"], "Could not find 'optimizer/adamw2'"),
    (["trainer.bogus=1"], "Key 'bogus' not in 'TrainerConfig'"),
    (["bogus=1"], "bogus"),
    (["trainer.max_epochs=abc"], "trainer.max_epochs=abc"),
    (["trainer.compile=maybe"], "trainer.compile=maybe"),
    (["seed=x"], "seed=x"),
    (["optimizer.lr=0"], "optimizer.lr=0.0 must be > 0"),
    (["optimizer.lr=-0.1"], "optimizer.lr=-0.1 must be > 0"),
    (["trainer.batch_size=0"], "trainer.batch_size=0 must be a positive integer"),
    (["trainer.batch_size=-8"], "trainer.batch_size=-8"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0"),
    (["trainer.max_epochs=-1"], "trainer.max_epochs=-1"),
    (["dataset.val_split=1"], "dataset.val_split=1"),
    (["dataset.val_split=1.5"], "dataset.val_split=1.5"),
    (["dataset.limit=0"], "dataset.limit=0"),
    (["model.hidden=[0]"], "model.hidden"),
    (["model.activation=swish"], "unknown activation 'swish'"),
    (["trainer.precision=8"], "trainer.precision='8'"),
    (["trainer.accelerator=tpu"], "trainer.accelerator='tpu'"),
    (["trainer.gradient_clip_val=-1"], "gradient_clip_val"),
    (["trainer.accumulate_grad_batches=0"], "accumulate_grad_batches"),
    (["model._target_=os.system"], "model._target_=os.system is not allowed"),
    (["optimizer._target_=torch.hub.load"], "torch.hub.load is not allowed"),
    (["dataset=mnist", "dataset.download=false", "dataset.root={tmp}/none"], "MNIST files missing"),
    (["trainer.resume={tmp}/nothing.pt"], "no such checkpoint"),
    (["trainer.resume={files}/corrupt.pt"], "is not a checkpoint"),
    (["trainer.resume={files}/truncated.pt"], "truncated or corrupt"),
    (["trainer.resume={files}/evil.pt"], "holds Python objects (posix.system)"),
    (["trainer.resume={files}/other_model.pt"], "does not fit this model"),
    (["hydra.run.dir={files}/a_file/run"], "is not a writable folder"),
    # os.access tells root /proc is writable; creating a folder there fails
    (["hydra.run.dir=/proc/dlx-run"], "cannot write the run dir /proc/dlx-run: /proc is not"),
    (
        ["callbacks=early_stopping", "callbacks.early_stopping.monitor=val/acc"],
        "callbacks.early_stopping.monitor=val/acc is not a metric",
    ),
    (["trainer.monitor=val/loss"], "trainer.monitor=val/loss is not a metric"),
    (["scheduler=plateau", "scheduler.monitor=val/acc"], "scheduler.monitor=val/acc"),
    (["scheduler=step", "scheduler.interval=hourly"], "scheduler.interval='hourly'"),
    # Found by trying: a layer too big for memory; a scheduler that only fails when it steps.
    (["model.hidden=[10000000000]"], "not enough memory"),
    (["scheduler=step", "scheduler.lr_scheduler.step_size=0"], "StepLR fails at its first step"),
    (["trainer.resume={files}/tensor.pt"], "is not a dlx checkpoint (it holds a Tensor"),
    # `+key=` (Hydra's own advice for a misspelt key) adds it past the schema: refused too
    (
        ["+trainer.max_epoch=3"],
        "trainer.max_epoch is not a trainer setting (did you mean trainer.max_epochs?)",
    ),
    (
        ["callbacks=early_stopping", "+callbacks.early_stopping.patiense=2"],
        "callbacks.early_stopping.patiense is not an option of EarlyStopping (did you mean "
        "callbacks.early_stopping.patience?)",
    ),
    (["+callbacks.mine.patience=2"], "callbacks.mine has no _target_"),
    # A data set's or model's node takes its class's own keys: judged by its signature.
    (["dataset.val_splt=0.2"], "dataset.val_splt is not an option of Digits (did you mean"),
    (["model.hiden=[3]"], "model.hiden is not an option of MLP (did you mean model.hidden?)"),
    (["optimizer.momentum=0.9"], "optimizer.momentum is not an option of Adam"),
    (["dataset.classes=[1.5,2]"], "dataset.classes"),
    (["dataset.classes=[3]"], "the training split has one class only (3: "),
    (["dataset.test_size=0"], "dataset.test_size=0 must be in (0, 1)"),
    (["dataset.test_size=1.0"], "dataset.test_size=1.0 must be in (0, 1)"),
    (["+scheduler.intervall=step"], "(did you mean scheduler.interval?)"),
    (["+sed=3"], "sed is not a top-level setting (did you mean seed?)"),
    (["seed=1180591620717411303424"], "seed=1180591620717411303424 must be in 0..4294967295"),
    (["seed=-1"], "seed=-1 must be in 0..4294967295"),
    (["dataset.limit=1180591620717411303424"], "dataset.limit=1180591620717411303424 does not fit"),
    (["model.hidden=[99999999999999999999999]"], "model.hidden[0]=99999999999999999999999 does"),
    (["trainer.gradient_clip_val=nan"], "trainer.gradient_clip_val=nan must be a finite number"),
    (["optimizer.lr=inf"], "optimizer.lr=inf must be a finite number"),
    (
        ["callbacks=early_stopping", "callbacks.early_stopping.min_delta=nan"],
        "callbacks.early_stopping.min_delta=nan must be a finite number",
    ),
]


def test_bad_invocations_fail_cleanly(tmp_path, files, cli_env):
    folder = next(iter(files.values())).parent

    def attempt(i: int, args: list[str]):
        case_dir = tmp_path / f"case{i}"
        case_dir.mkdir()
        args = [a.format(tmp=case_dir, files=folder) for a in args]
        if not any(a.startswith("hydra.run.dir=") for a in args):
            args.append(f"hydra.run.dir={case_dir / 'run'}")
        env = {**cli_env, "DLX_CACHE_DIR": str(case_dir / "cache")}
        return case_dir, args, run_dlx("train", "debug=smoke", *args, env=env, cwd=case_dir)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda c: attempt(*c), enumerate(a for a, _ in CASES)))

    problems = []
    for (case_dir, args, out), (_, words) in zip(results, CASES, strict=True):
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
        why = []
        if out.returncode == 0:
            why.append("exit 0")
        if len(lines) != 1 or not lines[0].startswith("error: "):
            why.append(f"not one 'error:' line: {out.stderr[-600:]!r}")
        elif words not in lines[0]:
            why.append(f"{words!r} not in {lines[0]!r}")
        left = [
            p
            for p in case_dir.rglob("*")
            if p.suffix in (".pt", ".tmp") or (p.name.startswith(".") and p.name.endswith(".tmp"))
        ]
        if left:
            why.append(f"left behind: {left}")
        if (case_dir / "PWNED").exists():
            why.append("the pickle payload ran")
        if why:
            problems.append(f"{' '.join(args)}: {'; '.join(why)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_start_up_ends_in_one_line(signum, code, tmp_path, cli_env):
    # Before the trainer takes the signals over (imports, composing, loading data), a
    # Ctrl-C or SIGTERM ended in a traceback from wherever start-up was.
    proc = subprocess.Popen(
        [DLX, "train", "debug=smoke", f"hydra.run.dir={tmp_path / 'run'}"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == code, err
    assert lines == [f"error: interrupted by {signal.Signals(signum).name}"], err
