"""`dlx info ... info.graph=true`: the model as a graphviz graph."""

from __future__ import annotations

import shutil

import pytest

from dlx.core.data import Spec, example_input
from dlx.core.errors import ConfigError
from dlx.graph import layer_nodes, to_dot, write_graph
from dlx.models.cnn import CNN
from tests.conftest import run_dlx
from tests.runs import png_size

MNIST = Spec((1, 28, 28), 10)


def test_nodes_follow_the_forward_pass_with_shapes():
    model = CNN(MNIST)
    nodes = layer_nodes(model, example_input(MNIST))
    kinds = [n.kind for n in nodes]
    assert kinds[:5] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d"]
    assert nodes[0].input_shape == "(None, 1, 28, 28)"
    assert nodes[0].output_shape == "(None, 5, 26, 26)"
    assert sum(n.params for n in nodes) == 93_858  # the book's 6-13 count
    dot = to_dot(nodes, "CNN", "(None, 1, 28, 28)")
    assert dot.startswith("digraph model {") and dot.count(" -> ") == len(nodes)


def test_without_graphviz_the_dot_file_and_how_to_install(tmp_path, cli_env):
    env = {**cli_env, "PATH": str(tmp_path / "no-bin")}  # no `dot` on this PATH
    target = tmp_path / "cnn.svg"
    out = run_dlx(
        "info", "model=cnn", "dataset=mnist", "info.graph=true", f"info.graph_file={target}",
        env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert not target.exists()
    dot = (tmp_path / "cnn.dot").read_text()
    assert dot.startswith("digraph model {") and "Conv2d" in dot
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "apt install graphviz" in lines[0] and "Traceback" not in out.stderr


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")
def test_svg_and_png_with_graphviz(tmp_path):
    path, note = write_graph(CNN(MNIST), example_input(MNIST), tmp_path / "m.svg", "CNN")
    assert note is None and path.read_text().lstrip().startswith(("<?xml", "<svg"))
    assert "features.0 (Conv2d)" in path.read_text() and "92,288" in path.read_text()
    path, _ = write_graph(CNN(MNIST), example_input(MNIST), tmp_path / "m.png", "CNN")
    width, height = png_size(path)
    assert height > 2 * width  # eleven layers stacked top to bottom


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="must be one of svg, png, pdf, dot"):
        write_graph(CNN(MNIST), example_input(MNIST), tmp_path / "m.jpeg", "CNN")
