"""Every figure, from real tiny runs: which ones a run gets, and that each is a complete PNG
of its designed size (dpi 100)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.runs import pixels, png_size, train

SMOKE = ("dataset=digits", "trainer.max_epochs=2", "trainer.limit_train_batches=4")


def plots(run_dir):
    return sorted(p.stem for p in (run_dir / "plots").glob("*.png"))


def on(device: str) -> tuple[str, ...]:
    """SMOKE on a device: figures from a model and data that sit there (CUDA: moved back)."""
    return (*SMOKE, f"trainer.accelerator={device}")


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory, device):
    return train(tmp_path_factory.mktemp("mlp"), *on(device))


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory, device):
    return train(tmp_path_factory.mktemp("cnn"), *on(device), "model=cnn")


def test_classifier_gets_curves_confusion_and_predictions(mlp_run):
    run_dir, _ = mlp_run
    assert plots(run_dir) == ["confusion_matrix", "learning_curves", "predictions"]
    assert png_size(run_dir / "plots" / "learning_curves.png") == (1000, 400)  # loss, acc
    assert png_size(run_dir / "plots" / "confusion_matrix.png") == (850, 750)  # 10 classes
    assert png_size(run_dir / "plots" / "predictions.png") == (800, 450)  # 32 = 4 rows of 8
    assert not list(run_dir.glob("plots/.*.tmp"))  # written by temp file + rename


def test_predictions_mark_wrong_labels_red(mlp_run):
    run_dir, metrics = mlp_run
    image = pixels(run_dir / "plots" / "predictions.png").astype(int)
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    red = ((r > 200) & (g < 60) & (b < 60)).sum()
    green = ((g > 100) & (r < 60) & (b < 60)).sum()
    # 2 short epochs on digits: some of the 32 are wrong (red), most right (green)
    assert metrics["test/acc"] < 1.0 and red > 0 and green > 0


def test_wrong_labels_keep_a_readable_size_and_fit_their_tile(tmp_path, monkeypatch):
    """Long class names (CIFAR's "automobile", a folder's own) on mostly wrong predictions:
    every label is 9 pt and inside its tile (they once shrank to 6 pt and ran over)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    import dlx.viz.style
    from tests.data.formats import write_image_folder

    drawn = {}
    save = dlx.viz.style.save_png
    monkeypatch.setattr(
        dlx.viz.style,
        "save_png",
        lambda fig, path, dpi=100: drawn.setdefault(path.stem, fig) and save(fig, path, dpi),
    )
    names = ["airplane", "automobile", "horse_drawn_carriage_with_driver", "truck"]
    write_image_folder(tmp_path / "imgs", dict.fromkeys(names, 10))
    train(
        tmp_path,
        "dataset=image_folder",
        f"dataset.root={tmp_path / 'imgs'}",
        "dataset.image_size=8",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "viz.figures=[predictions]",
    )
    fig = drawn["predictions"]
    renderer = FigureCanvasAgg(fig).get_renderer()
    labels = [(ax, t) for ax in fig.axes for t in ax.texts]
    red = [t for _, t in labels if t.get_color() == "red"]
    assert red, "an untrained model gets some wrong"
    assert {t.get_fontsize() for _, t in labels} == {9}
    for ax, text in labels:
        box, tile = text.get_window_extent(renderer), ax.get_window_extent(renderer)
        assert box.x0 >= tile.x0 - 1 and box.x1 <= tile.x1 + 1, text.get_text()
    # a name too long for a tile is cut with an ellipsis, a shorter one shown whole
    shown = [t.get_text().removeprefix("(").removesuffix(")") for _, t in labels]
    for text in shown:
        if text.endswith("\u2026"):
            assert [n for n in names if n.startswith(text[:-1]) and len(n) > 12], text
        else:
            assert text in names and len(text) <= 12
    assert any(t.endswith("\u2026") for t in shown)


def test_cnn_feature_maps_per_conv_layer(cnn_run):
    run_dir, _ = cnn_run
    assert "feature_maps_1" in plots(run_dir) and "feature_maps_2" in plots(run_dir)
    # 10 inputs x 0.9 in + 0.8 in labels; (1 input row + 5 filters) x 0.9 in + 0.6 in title
    assert png_size(run_dir / "plots" / "feature_maps_1.png") == (980, 600)
    assert png_size(run_dir / "plots" / "feature_maps_2.png") == (980, 600)


def test_autoencoder_and_denoising(tmp_path, device):
    run_dir, _ = train(tmp_path, *on(device), "model=denoising_autoencoder", "model.code=16")
    assert "autoencoder" in plots(run_dir) and "denoising" in plots(run_dir)
    assert "confusion_matrix" not in plots(run_dir)  # not a classifier: skipped
    assert png_size(run_dir / "plots" / "autoencoder.png") == (1200, 440)
    assert png_size(run_dir / "plots" / "denoising.png") == (1000, 380)  # 3 rows of 10


def test_rbm_components(tmp_path, device):
    run_dir, _ = train(tmp_path, *on(device), "model=rbm", "model.n_components=40")
    assert "rbm_components" in plots(run_dir)
    assert png_size(run_dir / "plots" / "rbm_components.png") == (1000, 160)  # 2 rows of 20


def test_perceptron_decision_regions(tmp_path):
    run_dir, metrics = train(
        tmp_path, "experiment=book/6_1_perceptron_torch", "trainer.max_epochs=10"
    )
    assert plots(run_dir) == ["confusion_matrix", "decision_regions", "learning_curves"]
    path = run_dir / "plots" / "decision_regions.png"
    assert png_size(path) == (600, 500)
    image = pixels(path).astype(int)
    # both classes' regions are painted: light red and light blue
    assert ((image[..., 0] > 240) & (image[..., 2] < 180)).sum() > 1000
    assert ((image[..., 2] > 240) & (image[..., 0] < 180)).sum() > 1000
    assert metrics["train/acc"] == 1.0


def test_sklearn_runs_get_figures_from_saved_arrays(tmp_path):
    run_dir, _ = train(tmp_path, "experiment=book/6_1_perceptron", name="perceptron")
    assert plots(run_dir) == ["confusion_matrix", "decision_regions"]
    assert png_size(run_dir / "plots" / "confusion_matrix.png") == (570, 470)  # 2 classes
    run_dir, _ = train(tmp_path, "model=sklearn_logistic", name="logistic")
    assert plots(run_dir) == ["confusion_matrix", "predictions"]
    with np.load(run_dir / "predictions.npz") as saved:
        assert saved["test"].shape == (360,)


def test_qlearning_q_matrix_with_greedy_path(tmp_path):
    run_dir, metrics = train(tmp_path, "experiment=book/6_16_qlearning_maze")
    assert metrics["greedy_path"] == [2, 3, 1, 5]
    assert plots(run_dir) == ["q_matrix"]
    path = run_dir / "plots" / "q_matrix.png"
    assert png_size(path) == (800, 700)
    image = pixels(path).astype(int)
    assert ((image[..., 0] > 200) & (image[..., 1] < 50) & (image[..., 2] < 50)).sum() > 200


def test_viz_disabled_or_chosen(tmp_path):
    run_dir, _ = train(tmp_path, *SMOKE, "viz.enabled=false", name="off")
    assert not (run_dir / "plots").exists()
    run_dir, _ = train(tmp_path, *SMOKE, "viz.figures=[learning_curves]", name="one")
    assert plots(run_dir) == ["learning_curves"]


def test_staged_run_draws_each_stage(tmp_path):
    run_dir, _ = train(
        tmp_path,
        *SMOKE,
        "model=cnn",
        "viz.figures=[confusion_matrix]",
        "+stages=[{name: a, overrides: {dataset: {classes: [0, 1]}}},"
        "{name: b, overrides: {dataset: {classes: [2, 3, 4]}}}]",
    )
    assert png_size(run_dir / "1_a" / "plots" / "confusion_matrix.png") == (570, 470)
    assert png_size(run_dir / "2_b" / "plots" / "confusion_matrix.png") == (605, 505)
    assert json.loads((run_dir / "metrics.json").read_text())["b/num_params"] > 0


def test_the_confusion_matrix_reuses_the_test_pass(tmp_path):
    """The figures take the classes the final test pass predicted: the model does not run
    over the test split a second time (6-14's LSTM spent ~4 s on that pass)."""
    import torch

    from dlx.models.mlp import MLP

    calls = {"n": 0}

    def count(module, args, output):
        if isinstance(module, MLP):
            calls["n"] += 1

    hook = torch.nn.modules.module.register_module_forward_hook(count)
    try:
        counts = {}
        for figures in ("[learning_curves]", "[confusion_matrix]"):
            calls["n"] = 0
            train(tmp_path, *SMOKE, f"viz.figures={figures}", name=figures.strip("[]"))
            counts[figures] = calls["n"]
    finally:
        hook.remove()
    assert counts["[learning_curves]"] > 4  # the run did call the model
    assert counts["[confusion_matrix]"] == counts["[learning_curves]"]
