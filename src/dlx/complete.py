"""What shell completion offers (the scripts are dlx/completion.py).

On TAB the shell runs `dlx --complete <shell>` with the line in COMP_LINE/COMP_POINT, and
this module answers, one candidate a line: the commands after `dlx`; after a command its
config groups (`model=`), keys (`trainer.`, `seed=`) and flags; after `group=` the group's
options (`model=cnn`, also in lists and sweeps: `logger=[csv,te`, `model=mlp,c`); after a
key with a few known values, those. It reads the packaged config tree, the folders a
`hydra.searchpath=[file://...]` on the line adds, and the schemas (their fields and
defaults): it imports no torch, no Hydra, and no code of the user's, in a fraction of a
second. The scripts and the `dlx --completion` command are dlx/completion.py.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CONFIGS = Path(__file__).resolve().parent / "configs"
FLAGS = ("--help", "--cfg", "--resolve", "--info", "-m", "--multirun", "--hydra-help")
TOP = ("--help", "--version", "--completion")
BOOLEANS = ("true", "false")
# Keys with a few known values (the schemas' docs say which; precision and accelerator
# come from the schemas' own lists).
CHOICES: dict[str, tuple[str, ...]] = {
    "trainer.resume": ("auto", "null"),
    "scheduler.interval": ("epoch", "step"),
    "split": ("test", "val", "train"),
    "extras.print_config": ("true", "false", "auto"),
    "extras.model_summary": ("true", "false", "auto"),
    "extras.final_table": ("true", "false", "auto"),
}
# Hydra's groups that its plugins register in code (no YAML to list): option -> plugin.
PLUGIN_OPTIONS = {
    "hydra/launcher": {"basic": None, "joblib": "hydra_joblib_launcher",
                       "submitit_local": "hydra_submitit_launcher",
                       "submitit_slurm": "hydra_submitit_launcher"},
    "hydra/sweeper": {"basic": None, "optuna": "hydra_optuna_sweeper"},
    "hydra/sweeper/sampler": dict.fromkeys(
        ("tpe", "random", "cmaes", "nsgaii", "motpe", "grid", "qmc"), "hydra_optuna_sweeper"),
}  # fmt: skip
HYDRA_KEYS = ("hydra.run.dir=", "hydra.sweep.dir=", "hydra.sweep.subdir=", "hydra.searchpath=",
              "hydra.job.name=", "hydra.job.chdir=", "hydra.verbose=", "hydra.mode=")  # fmt: skip


def complete(words: list[str], current: str, commands: Iterable[str]) -> list[str]:
    """The candidates for `current`, the word being typed after `dlx <words...>`, where
    `commands` are dlx's commands."""
    if not words:
        return _starting(current, [*commands, *TOP])
    if words[0] == "--completion" and len(words) == 1:
        return _starting(current, ["bash", "zsh"])
    command = words[0]
    primary = CONFIGS / f"{command}.yaml"
    if command not in commands or not primary.is_file():
        return []  # a command without a config tree: the shell completes file names
    if words[-1] in ("--cfg", "-c"):
        return _starting(current, ["job", "hydra", "all"])
    if current.startswith("-"):
        return _starting(current, FLAGS)
    config = Config(command, words[1:])
    sign = re.match(r"[+~]*", current).group()  # +key=, ++key=, ~key
    body = current[len(sign) :]
    if "=" in body:
        key, value = body.split("=", 1)
        return [f"{sign}{key}={v}" for v in config.values(key.split("@")[0], value)]
    return [sign + c for c in config.keys(body)]


def _starting(prefix: str, names: Any) -> list[str]:
    return sorted({n for n in names if n.startswith(prefix)})


class Config:
    """The command's config as far as completion needs it: groups and their options, and a
    tree of keys (the schemas' fields with the chosen options' YAML keys on top)."""

    def __init__(self, command: str, words: list[str]) -> None:
        self.roots = [CONFIGS, *_search_path(words)]
        chosen = {}
        for word in words:
            key, eq, value = word.lstrip("+~").partition("=")
            if eq:
                chosen[key.split("@")[0]] = value
        self.defaults, schema = _defaults(CONFIGS / f"{command}.yaml")
        self.chosen = {**self.defaults, **chosen}
        self.schema = schema

    def groups(self) -> list[str]:
        names = {d.name for root in self.roots for d in _dirs(root) if d.name != "hydra"}
        return sorted(names | set(self.defaults))

    def hydra_groups(self) -> list[str]:
        found = set(PLUGIN_OPTIONS)
        for base in (*self.roots, _hydra_conf()):
            if base is not None and (base / "hydra").is_dir():
                found |= {f"hydra/{d.name}" for d in _dirs(base / "hydra")}
        return sorted(found)

    def options(self, group: str) -> list[str]:
        names = set()
        for root in (*self.roots, _hydra_conf()):
            folder = None if root is None else root / group
            if folder is not None and folder.is_dir():
                names |= {
                    str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.yaml")
                }
        names |= {o for o, plugin in PLUGIN_OPTIONS.get(group, {}).items() if _has_plugin(plugin)}
        return sorted(names)

    def tree(self) -> dict[str, Any]:
        from dlx.core import roots, schemas

        root = roots.ROOTS.get(self.schema) or schemas.SCHEMAS.get(self.schema)
        tree = _fields(root or schemas.RunConfig)
        for group in self.defaults:
            node = _fields(schemas.SCHEMAS[group]) if group in schemas.SCHEMAS else {}
            value = self.chosen.get(group)
            for option in re.findall(r"[\w/.-]+", value or "") if value != "null" else []:
                _merge(node, self._option_keys(group, option))
            tree[group] = node
        return tree

    def _option_keys(self, group: str, option: str) -> dict[str, Any]:
        import yaml

        for root in self.roots:
            path = root / group / f"{option}.yaml"
            if path.is_file():
                try:
                    loaded = yaml.safe_load(path.read_text())
                except (OSError, yaml.YAMLError):
                    return {}
                if isinstance(loaded, dict):
                    return {k: v for k, v in loaded.items() if k != "defaults"}
        return {}

    def keys(self, typed: str) -> list[str]:
        """`dlx train mod` -> model=, model.; `trainer.max` -> trainer.max_epochs=."""
        if typed.startswith("hydra"):
            groups = [f"{g}=" for g in self.hydra_groups()]
            return _starting(typed, [*groups, *HYDRA_KEYS])
        path, _, _ = typed.rpartition(".")
        node: Any = self.tree()
        for part in path.split(".") if path else []:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return []
        prefix = f"{path}." if path else ""
        found = [f"{prefix}{k}{'.' if isinstance(v, dict) and v else '='}" for k, v in node.items()]
        if not path:
            found += [f"{g}=" for g in self.groups()]
        return _starting(typed, found)

    def values(self, key: str, typed: str) -> list[str]:
        """`model=c` -> cnn; `logger=[csv,te` -> [csv,tensorboard; `trainer.compile=` ->
        true, false."""
        head, last = re.match(r"(.*[\[,])?(.*)", typed).groups()
        head = head or ""
        if key in self.groups() or key in self.hydra_groups():
            names = self.options(key)
        elif key in CHOICES or key in ("trainer.precision", "trainer.accelerator"):
            from dlx.core.schemas import ACCELERATORS, PRECISIONS

            known = {"trainer.precision": PRECISIONS, "trainer.accelerator": ACCELERATORS}
            names = list({**CHOICES, **known}[key])
        elif isinstance(self._leaf(key), bool):
            names = list(BOOLEANS)
        else:
            return []  # a path or a number: the shell's own (file names)
        return [head + n for n in _starting(last, names)]

    def _leaf(self, key: str) -> Any:
        node: Any = self.tree()
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node


def _defaults(primary: Path) -> tuple[dict[str, str | None], str]:
    """The groups a command composes with their default options, and its schema's name."""
    import yaml

    defaults: dict[str, str | None] = {}
    schema = "run"
    for path in (primary, CONFIGS / "groups.yaml"):
        entries = (yaml.safe_load(path.read_text()) or {}).get("defaults") or []
        for entry in entries:
            if isinstance(entry, str) and entry.startswith("/schema/") and "@_global_" in entry:
                schema = entry[len("/schema/") :].split("@")[0]
            elif isinstance(entry, dict):
                for key, value in entry.items():
                    if not key.startswith(("override", "/")) and key != "hydra":
                        defaults[key] = None if value is None else str(value)
    return defaults, schema


def _fields(schema: Any) -> dict[str, Any]:
    """A dataclass schema as {key: default}, nested dataclasses as dicts."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(schema):
        if f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            value = None if f.default is dataclasses.MISSING else f.default
        out[f.name] = _fields(type(value)) if dataclasses.is_dataclass(value) else value
    return out


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(("_", "."))]


def _search_path(words: list[str]) -> list[Path]:
    """The `file://` folders of a `hydra.searchpath=[...]` on the line (pkg:// entries would
    need an import to find: left out)."""
    roots = []
    for word in words:
        key, _, value = word.lstrip("+").partition("=")
        if key == "hydra.searchpath":
            for item in value.strip("[]").split(","):
                if item.strip().startswith("file://"):
                    roots.append(Path(item.strip()[len("file://") :]).expanduser())
    return roots


def _hydra_conf() -> Path | None:
    """Hydra's own config folder, found without importing Hydra."""
    for entry in sys.path:
        conf = Path(entry or ".") / "hydra" / "conf"
        if conf.is_dir():
            return conf
    return None


def _has_plugin(name: str | None) -> bool:
    return name is None or any(
        (Path(entry or ".") / "hydra_plugins" / name).is_dir() for entry in sys.path
    )


def answer(shell: str, commands: Iterable[str], trim: bool = True) -> str:
    """What `dlx --complete <shell>` prints for the line in $COMP_LINE (up to $COMP_POINT).
    bash splits words at `=` and `:` too (COMP_WORDBREAKS): it gets each candidate without
    the part of the word before the last such break, which is the part it keeps; zsh gets
    them without what is up to the last `=` (its script sets that part aside)."""
    line = os.environ.get("COMP_LINE", "")
    point = os.environ.get("COMP_POINT", "")
    line = line[: int(point)] if point.isdigit() else line
    words = line.split()
    current = "" if not line or line[-1].isspace() else words.pop()
    current = current.lstrip("'\"")  # 'logger=[csv,t (quoted for zsh's globbing)
    found = complete(words[1:], current, list(commands))
    if trim:  # zsh's script moves what is up to the last = out of the word (compset)
        breaks = os.environ.get("COMP_WORDBREAKS", " \t\n\"'><=;|&(:") if shell == "bash" else "="
        cut = max((current.rfind(c) for c in breaks if not c.isspace()), default=-1) + 1
        found = [f[cut:] for f in found]
    return "".join(f"{f}\n" for f in found)
