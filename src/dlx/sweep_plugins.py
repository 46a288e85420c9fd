"""The optional Hydra plugins sweeps use (launchers, the Optuna sweeper): a missing one is
named with the dlx extra that installs it, in one line. Torch-free and light."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from dlx.core.errors import ConfigError

# command-line option -> (plugin module, library it drives, the dlx extra that installs both)
_PLUGINS: dict[str, tuple[str, str, str]] = {
    "hydra/launcher=joblib": ("hydra_plugins.hydra_joblib_launcher", "joblib", "sweep"),
    "hydra/launcher=submitit_local": ("hydra_plugins.hydra_submitit_launcher", "submitit", "slurm"),
    "hydra/launcher=submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "submitit", "slurm"),
    "hydra/launcher=slurm": ("hydra_plugins.hydra_submitit_launcher", "submitit", "slurm"),
    "hydra/sweeper=optuna": ("hydra_plugins.hydra_optuna_sweeper", "optuna", "sweep"),
    "hparams_search=": ("hydra_plugins.hydra_optuna_sweeper", "optuna", "sweep"),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_plugins(argv: Iterable[str]) -> None:
    """One line naming the extra to install when an override needs a plugin that is missing
    (Hydra alone would say "Could not find 'hydra/launcher/joblib'")."""
    for arg in argv:
        option = arg.lstrip("+~").removeprefix("override ")
        for prefix, (plugin, library, extra) in _PLUGINS.items():
            if option.startswith(prefix) and not (_installed(plugin) and _installed(library)):
                raise ConfigError(
                    f"{option} needs Hydra's {library} plugin, which is not installed here; "
                    f"pip install 'dlx[{extra}]'"
                )


def is_search(argv: Iterable[str]) -> bool:
    """`hparams_search=<name>` makes a multirun without -m (its config sets hydra.mode)."""
    return any(a.lstrip("+").startswith(("hparams_search=", "hydra.mode=MULTIRUN")) for a in argv)
