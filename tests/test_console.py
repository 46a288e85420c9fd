"""The console at the start and end of `dlx train`: config tree, model summary, final table.

Off by default when stdout is not a terminal (auto); extras.*=true forces them."""

from __future__ import annotations

import pytest

from dlx.command import check
from dlx.compose import compose
from dlx.core.errors import ConfigError
from tests.runs import train

SMOKE = ("dataset=digits", "debug=smoke", "viz.enabled=false")


def test_tree_summary_and_final_table_when_asked(tmp_path, capsys):
    run_dir, _ = train(
        tmp_path,
        *SMOKE,
        "extras.print_config=true",
        "extras.model_summary=true",
        "extras.final_table=true",
    )
    out = capsys.readouterr().out
    tree, rest = out.split("Layer (type)", 1)
    assert tree.lstrip().startswith("config") and "dataset" in tree and "optimizer" in tree
    assert "_target_: dlx.models.mlp.MLP" in tree
    assert "Total params: 58,810" in rest  # the summary dlx info prints
    table = rest.split("final metrics", 1)[1]
    assert "test/acc" in table and "num_params" in table
    assert f"run dir: {run_dir}" in table


def test_nothing_extra_when_not_a_terminal(tmp_path, capsys):
    train(tmp_path, *SMOKE)  # extras.*: auto, and pytest's stdout is not a terminal
    out = capsys.readouterr().out
    assert "Layer (type)" not in out and "final metrics" not in out and "config" not in out


def test_on_a_terminal_the_config_tree_only_when_asked(tmp_path, capsys, monkeypatch):
    """A terminal run shows the model summary and the final table, not an 80-line tree."""
    import re
    import sys

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    train(tmp_path, *SMOKE, "trainer.progress=false")
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # rich's colours
    assert "Total params: 58,810" in out and "final metrics" in out
    assert "_target_: dlx.models.mlp.MLP" not in out and "optimizer" not in out
    train(tmp_path, *SMOKE, "trainer.progress=false", "extras.print_config=true", name="tree")
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert "_target_: dlx.models.mlp.MLP" in out


def test_bad_extras_value_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"extras.final_table='sometimes' must be true, false"):
        check(compose("train", ["extras.final_table=sometimes"]), None)
