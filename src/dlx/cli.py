"""`dlx <command> [hydra overrides]`: argv[1] picks the command, the rest goes to Hydra.

This module imports nothing heavy: `dlx --help` answers in a fraction of a second, and each
command imports what it needs only once it is chosen.
"""

from __future__ import annotations

import gc
import importlib
import logging
import signal
import sys

from dlx import __version__

# name -> (module with a `main(argv)` function, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("dlx.train", "train a model: dlx train model=cnn dataset=mnist trainer.max_epochs=3"),
    "eval": (
        "dlx.evaluate",
        "evaluate a checkpoint: dlx eval ckpt=outputs/.../checkpoints/best.pt",
    ),
    "predict": (
        "dlx.predict",
        "classify new images or texts: dlx predict ckpt=<run dir> input=<file | folder | glob>",
    ),
    "export": (
        "dlx.export",
        "export a checkpoint for serving: dlx export ckpt=<run dir> format=onnx|torchscript|pt2",
    ),
    "viz": ("dlx.viz.cli", "redraw a run's figures: dlx viz run_dir=outputs/train/<date>/<time>"),
    "info": (
        "dlx.info",
        "print a model summary without training (info.graph=true: draw it with graphviz)",
    ),
    "data": (
        "dlx.prepare",
        "download or locate, prepare and cache a data set: dlx data dataset=imdb",
    ),
    "runs": (
        "dlx.runs",
        "every run under a folder, best first: dlx runs [root=outputs] [compare=[dir,dir]]",
    ),
}

USAGE = """usage: dlx <command> [overrides...] [--help]

Config-driven deep-learning experiments (dlx {version}).

commands:
{commands}

Overrides are Hydra's: key=value, group=option, -m/--multirun for sweeps.
`dlx <command> --help` shows the config groups and their options.
Shell completion: eval "$(dlx --completion bash)" (or zsh), e.g. in ~/.bashrc.
"""


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = "\n".join(f"  {name:<{width}}  {desc}" for name, (_, desc) in COMMANDS.items())
    return USAGE.format(version=__version__, commands=lines)


def main(argv: list[str] | None = None) -> None:
    """The `dlx` console script (argv None: sys.argv), or a command called from Python."""
    argv_is_the_process = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(usage())
        return
    if argv[0] in ("-V", "--version"):
        sys.stdout.write(f"dlx {__version__}\n")
        return
    if argv[0] in ("--completion", "--complete") or {"-sc", "--shell-completion"} & set(argv):
        from dlx.completion import main as completion  # (Hydra's -sc flag lands here too)

        completion(argv, COMMANDS)
        return
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        sys.stderr.write(
            f"error: unknown command {name!r}; valid commands: {', '.join(COMMANDS)}\n"
            "       (dlx --help lists them)\n"
        )
        raise SystemExit(2)
    if argv_is_the_process:
        # Until the trainer takes them over (and after it), a signal ends the command in
        # one line with 128 + its number, not a traceback from wherever start-up was.
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        # A log file on a full or read-only disk would print a traceback for every record
        # (logging's default); the run's own writes fail with one line saying what to do.
        logging.raiseExceptions = False
    try:
        module = importlib.import_module(COMMANDS[name][0])
        module.main(rest)
    except KeyboardInterrupt as err:
        from dlx.core.errors import interrupted

        interrupted(err)
    finally:
        if argv_is_the_process:
            # The process exits next, and Python's exit runs full garbage collections over
            # every object (`import torch` alone leaves 200,000): 0.5 s of a short run.
            # Frozen objects are skipped. atexit handlers (logging's flush) still run, and
            # the loggers and files of a run are closed by now.
            gc.freeze()


def _interrupt(signum: int, frame: object) -> None:
    from dlx.core.errors import Interrupted

    raise Interrupted(signum)


if __name__ == "__main__":
    main()
