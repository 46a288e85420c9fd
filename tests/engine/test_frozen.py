"""Frozen input layers run once a fit (engine/frozen.py): the same training, fewer passes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlx.core.data import Spec
from dlx.engine import frozen
from dlx.engine.transfer import freeze
from dlx.models.cnn import CNN
from tests.runs import TIMING, train

STAGES = (
    "+stages=[{name: a, overrides: {dataset: {classes: [0, 1, 2, 3, 4]}}},"
    "{name: b, overrides: {dataset: {classes: [5, 6, 7, 8, 9]},"
    " model: {init_from: previous, freeze: [features]}}}]"
)
RUN = ("dataset=digits", "model=cnn", "trainer.max_epochs=3", "viz.enabled=false", STAGES)


def test_only_frozen_passive_layers_at_the_input_count():
    model = CNN(Spec((1, 12, 12), 10))  # conv relu conv relu pool dropout flatten
    assert frozen.frozen_layers(model) == 0
    freeze(model, ["features"])
    assert frozen.frozen_layers(model) == 5  # up to the dropout, which differs each batch
    model.features.insert(1, nn.BatchNorm2d(5))  # its output depends on the mode and batch
    assert frozen.frozen_layers(model) == 1
    assert frozen.frozen_layers(nn.Sequential(nn.Linear(2, 2))) == 0  # takes no `skip`
    no_dropout = CNN(Spec((1, 12, 12), 10), conv_dropout=0)
    freeze(no_dropout, ["features"])
    assert frozen.frozen_layers(no_dropout) == 6  # dlx's Flatten (a subclass) included


def test_a_frozen_stage_trains_as_before_with_one_pass_through_its_convolutions(
    tmp_path, monkeypatch
):
    first_conv = {"calls": 0}

    def count(module, args, output):
        if isinstance(module, nn.Conv2d) and module.in_channels == 1:
            first_conv["calls"] += 1

    hook = torch.nn.modules.module.register_module_forward_hook(count)
    try:
        _, cached = train(tmp_path, *RUN, name="cached")
        calls_cached = first_conv["calls"]
        monkeypatch.setattr(frozen, "MAX_BYTES", 0)  # the cache would not fit: every epoch
        first_conv["calls"] = 0
        _, plain = train(tmp_path, *RUN, name="plain")
        calls_plain = first_conv["calls"]
    finally:
        hook.remove()
    for key, value in plain.items():
        if key.endswith(TIMING) or not isinstance(value, float):
            continue
        assert cached[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    # stage b: ~900 train + ~180 test samples, batch 128, 3 epochs: ~25 passes without the
    # cache, one chunk per split with it (stage a trains its convolutions: the same in both)
    assert calls_plain - calls_cached >= 20
