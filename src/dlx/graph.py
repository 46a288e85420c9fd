"""`dlx info ... info.graph=true`: the model's architecture as a picture, drawn by graphviz.

Like the book's `model_to_dot(model, show_shapes=True)`: a box per layer, in the order the
forward pass calls them, with its type, input and output shapes and parameter count. dlx
writes the DOT text itself (no pydot); graphviz's `dot` program renders it to SVG, PNG or
PDF (the file's extension decides). Without `dot` the DOT file is written next to where
the picture would go and one line says how to install graphviz; the exit status stays 0,
as the DOT file is the graph and any graphviz tool (or an online viewer) draws it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlx.core.errors import ConfigError
from dlx.core.io import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from dlx.summary import LayerRow

FORMATS = ("svg", "png", "pdf", "dot")
INSTALL = (
    "graphviz's `dot` program is not installed: apt install graphviz | brew install graphviz | "
    "conda install graphviz (https://graphviz.org/download/)"
)


def layer_nodes(model: Any, example: Any) -> list[LayerRow]:
    """Each leaf module (or module with its own parameters) in call order, with shapes:
    the rows of the model summary, which also record each layer's input shape."""
    from dlx.summary import summarize

    return summarize(model, example)


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("{", "\\{")
        .replace("}", "\\}")
        .replace("<", "\\<")
        .replace(">", "\\>")
        .replace("|", "\\|")
    )


def to_dot(nodes: list[LayerRow], title: str, input_shape: str) -> str:
    lines = [
        "digraph model {",
        f'  graph [rankdir=TB, label="{_escape(title)}", labelloc=t, fontname="Helvetica"];',
        '  node [shape=record, fontname="Helvetica", fontsize=11];',
        f'  input [label="input | {_escape(input_shape)}"];',
    ]
    previous = "input"
    for i, node in enumerate(nodes):
        label = (
            f"{_escape(node.name)} ({node.kind}) | "
            f"{{input: | output:}} | {{{_escape(node.input_shape)} | {_escape(node.output_shape)}}}"
            f" | params {node.params:,}"
        )
        lines.append(f'  n{i} [label="{label}"];')
        lines.append(f"  {previous} -> n{i};")
        previous = f"n{i}"
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_graph(model: Any, example: Any, path: Path, title: str) -> tuple[Path, str | None]:
    """Write the graph to `path`; returns (what was written, a note when graphviz is missing)."""
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ConfigError(
            f"info.graph_file={path}: the extension must be one of {', '.join(FORMATS)}"
        )
    from dlx.summary import shape_of

    dot_text = to_dot(layer_nodes(model, example), title, shape_of(example))
    if fmt == "dot":
        atomic_write_text(dot_text, path)
        return path, None
    dot = shutil.which("dot")
    if dot is None:
        fallback = path.with_suffix(".dot")
        atomic_write_text(dot_text, fallback)
        return fallback, f"{INSTALL}; wrote the DOT file {fallback} instead of {path}"
    done = subprocess.run([dot, f"-T{fmt}"], input=dot_text.encode(), capture_output=True)
    if done.returncode != 0:
        raise ConfigError(f"graphviz's dot failed: {done.stderr.decode().strip()[:200]}")
    atomic_write_bytes(done.stdout, path)
    return path, None
