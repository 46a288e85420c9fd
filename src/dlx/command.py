"""Every dlx command is a Hydra app: its own primary config (configs/<command>.yaml) built
from the same groups, with the same override grammar, `--cfg`, `--help` and one-line errors.

`run_command("eval", task, argv)` checks the command line (dlx/guard.py), composes and runs
`task(cfg)` under Hydra, and turns a bad override or value into one line (`error: ...`) with
a non-zero exit. `--help` is Hydra's, plus each schema key with its doc.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import MISSING, DictConfig, OmegaConf

from dlx import guard
from dlx.compose import COMPOSE_ERRORS, as_config_error
from dlx.core.errors import ConfigError, DlxError, fail, fail_on_write_fault, reports_errors
from dlx.core.roots import COMMAND_ROOTS, ROOTS, register_configs
from dlx.core.schemas import SCHEMAS

# Shown by --help: each key of dlx's own schemas with its default and doc.
HELP_SCHEMAS = ("trainer", "dataset", "model", "scheduler", "viz", "extras")


def run_command(name: str, task: Callable[[DictConfig], Any], argv: list[str]) -> None:
    """Compose configs/<name>.yaml with `argv` and run `task(cfg)` inside Hydra."""
    import hydra

    install(argv)

    @hydra.main(config_path="configs", config_name=name, version_base="1.3")
    @reports_errors
    def main(cfg: DictConfig) -> Any:
        job_started()
        from dlx.core.checks import check_values

        try:
            check_values(cfg)  # first of all: a value the command needs and lacks (ckpt=)
            return task(cfg)
        except BaseException:
            _remove_fresh_run_dir()
            raise

    sys.argv = [f"dlx {name}", *argv]
    if "--help" in argv or "-h" in argv:
        print_help(main, name)
        return
    # A plain run reports a bad override in one line; Hydra's own flags (--cfg, --info) and
    # sweeps keep Hydra's report.
    plain = not any(a.startswith("-") for a in argv) and not _is_search(argv)
    with one_line_errors() if plain else contextlib.nullcontext():
        main()


def install(argv: list[str]) -> None:
    """What every command sets up before Hydra runs: the schemas, the security checks of
    the command line and of every config Hydra composes, and atomic `.hydra/` files."""
    register_configs()
    reports_errors(guard.check_argv)(argv)
    guard.install(cli=True)
    guard.inspect_only(argv)
    _atomic_hydra_files()


# A run dir Hydra is about to create for a command that only reads (eval): removed again
# when the command fails, so a refused request leaves nothing behind (RunChecks sets it).
fresh_run_dir: list[Path] = []


def _remove_fresh_run_dir() -> None:
    import logging
    import shutil

    for folder in fresh_run_dir:
        logging.shutdown()  # the run's log file is in it
        shutil.rmtree(folder, ignore_errors=True)
    fresh_run_dir.clear()


def _atomic_hydra_files() -> None:
    """Hydra writes a run's `.hydra/*.yaml` with a plain open(): a full disk left a
    zero-byte config.yaml. Written as every dlx file is (temp, then rename); a failure
    leaves no empty folder behind and ends in one line."""
    import hydra.core.utils as hydra_utils

    if getattr(hydra_utils, "_dlx_atomic", False):
        return

    def save_config(cfg: Any, filename: str, output_dir: Path) -> None:
        from omegaconf import OmegaConf

        from dlx.core.errors import WriteError
        from dlx.core.io import atomic_write_text

        try:
            atomic_write_text(OmegaConf.to_yaml(cfg), Path(output_dir) / filename)
        except WriteError:
            for folder in (Path(output_dir), Path(output_dir).parent):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if empty
            raise

    hydra_utils._save_config = save_config
    hydra_utils._dlx_atomic = True  # type: ignore[attr-defined]


def check(cfg: DictConfig, run_dir: str | Path | None) -> None:
    """What can be checked before a run dir exists: values, then the objects the targets
    name (which imports their modules: torch), then the run dir. Hydra's own targets and
    the config's shape were checked as Hydra composed it (dlx/guard.py)."""
    from dlx.core.checks import check_values
    from dlx.core.io import check_writable
    from dlx.observe import check_options

    check_values(cfg)
    check_options(cfg)
    guard.check_config(cfg)
    if run_dir is not None:
        check_writable(Path(run_dir).expanduser())


def _is_search(argv: list[str]) -> bool:
    return any(a.lstrip("+").startswith(("hparams_search=", "hydra.mode=MULTIRUN")) for a in argv)


def print_help(main: Callable[[], Any], name: str) -> None:
    """Hydra's help without the `schema` groups (they type the others; not options), then
    every setting of dlx's schemas with its default and what it does."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            main()
    finally:  # Hydra ends its --help with SystemExit(0)
        text = re.sub(r"(?m)^schema(/\w+)?: .*\n", "", out.getvalue())
        sys.stdout.write(text + settings_help(name))


def settings_help(name: str) -> str:
    lines = ["", "== Settings (key: default  what it does) =="]
    own = ROOTS.get(COMMAND_ROOTS.get(name, ""))
    if own is not None and not issubclass(own, SCHEMAS["run"]):  # predict, export: own keys only
        return "\n".join(lines + _section("", own)) + "\n"
    if own is not None:
        lines += _section("", own, skip=SCHEMAS["run"])
    lines += _section("", SCHEMAS["run"])
    if name == "train":
        lines += _section("sweep.", SCHEMAS["sweep"])
    for group in HELP_SCHEMAS:
        lines += _section(f"{group}.", SCHEMAS[group])
    return "\n".join(lines) + "\n"


def _section(prefix: str, schema: type, skip: type | None = None) -> list[str]:
    inherited = {k for k, _, _ in docs(skip)} if skip is not None else set()
    return [
        f"  {prefix}{key}: {default}  # {doc}"
        for key, default, doc in docs(schema)
        if key not in inherited
    ]


def docs(schema: type) -> list[tuple[str, str, str]]:
    """(key, default, doc) of each documented field of a schema, for `--help`."""
    out = []
    for f in dataclasses.fields(schema):
        doc = f.metadata.get("doc")
        if doc is None:
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        shown = "???" if default is MISSING else "null" if default is None else default
        if isinstance(shown, bool):
            shown = str(shown).lower()
        out.append((f.name, str(shown), doc))
    return out


# Set while a plain command composes (see one_line_errors); the job clears it on entry.
_FULL_ERROR = "HYDRA_FULL_ERROR"
_set_full_error = False


def job_started() -> None:
    global _set_full_error
    if _set_full_error:
        os.environ.pop(_FULL_ERROR, None)
        _set_full_error = False


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Composition errors as one line ("error: ..."), not Hydra's report.

    HYDRA_FULL_ERROR makes Hydra re-raise what it would print, here to be put in one line.
    The job unsets it as it starts, so an error inside the job gets Hydra's usual report.
    """
    global _set_full_error
    _set_full_error = _FULL_ERROR not in os.environ
    if _set_full_error:
        os.environ[_FULL_ERROR] = "1"
    try:
        yield
    except DlxError as err:
        fail(str(err), err.exit_code)
    except COMPOSE_ERRORS as err:
        err = as_config_error(err)
        fail(str(err), err.exit_code)
    except OSError as err:  # Hydra writing .hydra/ onto a full or read-only disk
        fail_on_write_fault(err)
    finally:
        job_started()


class RunChecks(Callback):
    """Hydra callback (configs/hydra/default.yaml): before Hydra creates a job's run dir,
    `check` the run (a bad value ends the command in one line; SystemExit, since Hydra
    turns a callback's exceptions into warnings), claim a run dir no other run uses
    (dlx/rundirs.py), and keep the `.hydra/` record of a run being resumed: the resume's
    own goes to `.hydra/resumes/<n>/`, listed in resumes.jsonl."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        reports_errors(_start_run)(config)


def _start_run(config: DictConfig) -> None:
    from dlx.rundirs import claim_run_dir, keep_record

    job = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
    if (config.get("sweep") or {}).get("resume"):
        raise ConfigError(
            "sweep.resume=true continues a multirun (-m with hydra.sweep.dir=<its dir>); a "
            "single run continues with trainer.resume=auto"
        )
    if config.hydra.job.name == "train":
        check(job, None)
        resume = bool(config.trainer.get("resume"))
        run_dir, _ = claim_run_dir(config, resume)
        if resume:
            keep_record(config, run_dir)
    else:  # eval: the config that counts is the checkpoint's, checked by the job
        run_dir, created = claim_run_dir(config, resume=False)
        if created:
            fresh_run_dir.append(run_dir)
