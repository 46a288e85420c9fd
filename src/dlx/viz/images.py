"""Figures of what a model learned or computes on images: the RBM's components (6-6), an
autoencoder's inputs, codes and reconstructions (6-10), noisy against denoised digits
(6-11) and each conv layer's feature maps (6-12, 6-13)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlx.viz.registry import Skip, figure
from dlx.viz.style import as_images, mosaic, new_figure, normalise, show, tile_shape


@figure("rbm_components")
def rbm_components(run: Any) -> Any:
    """The book's 6-6: each hidden unit's weights over the visible pixels, as a tile."""
    weights = _rbm_weights(run)
    chw = run.require_images()
    if weights.shape[1] != math.prod(chw):
        raise Skip(f"RBM has {weights.shape[1]} visible units, images have {math.prod(chw)}")
    n = len(weights)
    tiles = normalise(as_images(weights, chw))
    cols = 20
    rows = math.ceil(n / cols)
    fig = new_figure(10, 10 * rows / cols + 0.6, run.options["dpi"])
    ax = fig.add_axes((0.01, 0.01, 0.98, 1 - 0.6 / (10 * rows / cols + 0.6) - 0.01))
    show(ax, mosaic(tiles, cols), "gray_r", aspect="auto")
    fig.suptitle(f"{n} components extracted by the RBM", fontsize=14)
    return fig


def _rbm_weights(run: Any) -> np.ndarray:
    model = run.model
    if model is not None:
        from dlx.models.rbm import BernoulliRBM

        rbm = next((m for m in model.modules() if isinstance(m, BernoulliRBM)), None)
        if rbm is None:
            raise Skip("no RBM")
        return rbm.weight.detach().float().cpu().numpy()
    path = run.run_dir / "model.npz"
    if path.is_file():  # scikit-learn's BernoulliRBM: rbm.components_
        from dlx.core.io import read_npz

        saved = read_npz(path)
        found = [k for k in saved if k.endswith("components_")]
        if found:
            return saved[found[0]]
    raise Skip("no RBM")


def _reconstructor(run: Any) -> Any:
    from dlx.core.tasks import Reconstruction

    model = run.require_model()
    if not isinstance(run.task, Reconstruction):
        raise Skip("not an autoencoder")
    return model


@figure("autoencoder")
def autoencoder(run: Any) -> Any:
    """The book's 6-10: 25 inputs, their codes (144 -> 12 x 12) and reconstructions."""
    model = _reconstructor(run)
    if not callable(getattr(model, "encode", None)):
        raise Skip("the model has no encode() for its codes")
    chw = run.require_images()
    name, split = run.eval_split()
    n = min(25, len(split))
    x = run.inputs(split, n)
    codes = run.forward(x, model.encode).reshape(n, -1).float().cpu().numpy()
    recon = run.forward(x).reshape(n, -1).float().cpu().numpy()
    side = math.ceil(math.sqrt(n))
    panels = (
        ("inputs", as_images(x.float().cpu().numpy(), chw)),
        (f"codes ({codes.shape[1]})", normalise(codes.reshape(n, *tile_shape(codes.shape[1])))),
        ("reconstructions", as_images(recon, chw)),
    )
    fig = new_figure(12, 4.4, run.options["dpi"])
    for i, (title, tiles) in enumerate(panels):
        ax = fig.add_axes((0.01 + i / 3, 0.01, 1 / 3 - 0.02, 0.86))
        clipped = tiles if tiles.ndim == 4 else tiles.clip(0, 1)
        show(ax, mosaic(clipped, side), "gray", vmin=0, vmax=1)
        ax.set_title(title)
    fig.suptitle(f"{run.model_name}: first {n} {name} samples")
    return fig


@figure("denoising")
def denoising(run: Any) -> Any:
    """The book's 6-11: clean digits, the same with the task's noise, and the model's
    output for the noisy ones (noise drawn from a generator seeded with the run's seed)."""
    import torch

    _reconstructor(run)
    factor = getattr(run.task, "noise_factor", None)
    if factor is None:
        raise Skip("not a denoiser")
    chw = run.require_images()
    name, split = run.eval_split()
    n = min(10, len(split))
    x = run.inputs(split, n)
    g = torch.Generator().manual_seed(int(run.cfg.get("seed") or 0))
    noise = torch.randn(x.shape, generator=g).to(x.device)
    noisy = (x + factor * noise).clamp(0.0, 1.0)
    out = run.forward(noisy).reshape(n, -1).float().cpu().numpy()
    rows = (("clean", x), ("noisy", noisy), ("denoised", out))
    fig = new_figure(n, 3 * 1.1 + 0.5, run.options["dpi"])
    height = 1.1 / (3 * 1.1 + 0.5)
    for r, (title, images) in enumerate(rows):
        values = images if isinstance(images, np.ndarray) else images.float().cpu().numpy()
        ax = fig.add_axes((0.08, 1 - 0.5 / (3 * 1.1 + 0.5) - (r + 1) * height, 0.91, height * 0.95))
        show(ax, mosaic(as_images(values, chw).clip(0, 1), n), "gray_r", vmin=0, vmax=1)
        ax.set_ylabel(title)
    fig.suptitle(f"{run.model_name}: {name} samples with noise x {factor}, and denoised")
    return fig


@figure("feature_maps")
def feature_maps(run: Any) -> dict[str, Any]:
    """The book's 6-12/6-13: for each conv layer (the first `viz.max_conv_layers`), its
    filters' outputs (after the layer's activation) for the first inputs: a row per filter,
    a column per input."""
    from torch import nn

    model = run.require_model()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    convs = convs[: run.options["max_conv_layers"]]
    if not convs:
        raise Skip("no conv layers")
    chw = run.require_images()
    _, split = run.eval_split()
    n = min(run.options["feature_map_inputs"], len(split))
    x = run.inputs(split, n)
    outputs = _conv_outputs(run, model, convs, x)
    inputs = as_images(x.float().cpu().numpy(), chw)
    colour = chw[0] == 3
    figures = {}
    for i, (conv, after, maps) in enumerate(outputs, 1):
        filters = min(maps.shape[1], run.options["max_filters"])
        tiles = normalise(maps[:, :filters].transpose(1, 0, 2, 3).reshape(-1, *maps.shape[2:]))
        cell = 0.9
        height = (filters + 1) * cell + 0.6
        fig = new_figure(n * cell + 0.8, height, run.options["dpi"])
        top = 1 - 0.6 / height
        row = cell / height
        ax = fig.add_axes(
            (0.8 / (n * cell + 0.8), top - row, 1 - 0.8 / (n * cell + 0.8) - 0.005, row * 0.95)
        )
        show(ax, mosaic(inputs if colour else inputs.clip(0, 1), n), "gray_r", vmin=0, vmax=1)
        ax.set_ylabel("input", rotation=0, ha="right", va="center")
        ax = fig.add_axes(
            (0.8 / (n * cell + 0.8), 0.005, 1 - 0.8 / (n * cell + 0.8) - 0.005, top - row - 0.01)
        )
        show(ax, mosaic(tiles, n), "gray_r" if not colour else "viridis", aspect="auto")
        h = maps.shape[2] + 1
        ax.set_yticks([f * h + maps.shape[2] / 2 for f in range(filters)])
        ax.set_yticklabels([f"filter {f + 1}" for f in range(filters)], fontsize=8)
        shown = "" if filters == maps.shape[1] else f", first {filters} of {maps.shape[1]} filters"
        fig.suptitle(
            f"conv layer {i} ({conv.out_channels} filters {conv.kernel_size[0]}x"
            f"{conv.kernel_size[1]}) after {after}: {maps.shape[2]}x{maps.shape[3]} maps"
            f"{shown}",
            fontsize=10,
        )
        figures[f"feature_maps_{i}"] = fig
    return figures


def _conv_outputs(
    run: Any, model: Any, convs: list[Any], x: Any
) -> list[tuple[Any, str, np.ndarray]]:
    """Each conv layer's output after the module that runs next if that is an activation
    (Keras' separate Activation layer, which the book plots), else the conv's own output."""
    from torch import nn

    passive = (
        nn.Conv2d,
        nn.Linear,
        nn.MaxPool2d,
        nn.AvgPool2d,
        nn.Dropout,
        nn.Flatten,
        nn.BatchNorm2d,
        nn.Sequential,
    )
    calls: list[tuple[Any, Any]] = []
    hooks = [
        m.register_forward_hook(lambda mod, _i, out: calls.append((mod, out)))
        for m in model.modules()
        if next(m.children(), None) is None
    ]
    try:
        run.forward(x)
    finally:
        for h in hooks:
            h.remove()
    found = []
    for conv in convs:
        at = next((i for i, (m, _) in enumerate(calls) if m is conv), None)
        if at is None:
            continue
        out, after = calls[at][1], "conv"
        if at + 1 < len(calls):
            nxt, nout = calls[at + 1]
            if not isinstance(nxt, passive) and getattr(nout, "shape", None) == out.shape:
                out, after = nout, type(nxt).__name__
        found.append((conv, after, out.detach().float().cpu().numpy()))
    return found
