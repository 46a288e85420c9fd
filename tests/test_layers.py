"""The import contract: layers only point down, and no module imports itself in a circle.

Function-level imports count (they are where cycles hide). Layers, lowest first:
core (schemas, checks, errors, files, targets, the data contract, tasks) <- data sets and
models <- engine (the loop, its parts, checkpoints, processes; the runners) <- app
(commands, console, figures, loggers, sweeps).
"""

from __future__ import annotations

import ast
from pathlib import Path

import dlx

SRC = Path(dlx.__file__).parent
LAYERS = (
    ("core", ("dlx.core",)),
    ("data and models", ("dlx.data", "dlx.models")),
    ("engine", ("dlx.engine", "dlx.baselines", "dlx.rl")),
)


def modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: Path, known: set[str]) -> set[str]:
    """The dlx modules a file imports, anywhere in it, `if TYPE_CHECKING:` too: a type named
    in a hint is a dependency a reader follows (parts see the loop through a Protocol,
    engine/parts.Loop, not by importing it)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name.startswith("dlx"):
                found.add(name)
    return found


def layer(module: str) -> int:
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return len(LAYERS) if module != "dlx" else -1


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(path, known) - {name, "dlx"} for name, path in mods.items()}


def test_layers_only_point_down():
    names = [n for n, _ in LAYERS] + ["app"]
    wrong = [
        f"{m} ({names[layer(m)]}) imports {d} ({names[layer(d)]})"
        for m, deps in graph().items()
        for d in deps
        if layer(d) > layer(m)
    ]
    assert not wrong, "\n".join(sorted(wrong))


def test_data_sets_and_models_do_not_import_each_other():
    wrong = [
        f"{m} imports {d}"
        for m, deps in graph().items()
        for d in deps
        if {m.split(".")[1], d.split(".")[1]} == {"data", "models"}
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    g = graph()
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(g.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(" -> ".join([*path[path.index(dep) :], dep]))
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = "done"

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


def test_the_contract_sees_imports_inside_functions(tmp_path):
    # The test would pass vacuously if it missed lazy imports: check it on a sample.
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    from dlx.engine.loop import Trainer\n")
    assert imports(sample, set(modules())) == {"dlx.engine.loop"}
