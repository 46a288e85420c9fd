"""model=torchvision: any torchvision classifier, its weights read safely (torchvision's cache,
a .pth or a .safetensors file), its head replaced, frozen or fine-tuned. Nothing here reaches
the network: weights are random state dicts written by the tests."""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from dlx.core.data import Spec
from dlx.core.errors import ConfigError
from dlx.engine.transfer import freeze
from dlx.models.backbone import TorchvisionNet
from tests.data.formats import write_image_folder, write_torch_home
from tests.runs import train

RGB, GREY = Spec((3, 16, 16), 3, ("a", "b", "c")), Spec((1, 16, 16), 2)


class Payload:
    """Unpickling this would create the file PWNED in the working directory."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No download, ever: torch.hub's downloader fails as it would without internet, and
    TORCH_HOME is an empty folder of this test's."""

    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError(f"offline test: no download of {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.chdir(tmp_path)  # where a payload would write PWNED


@pytest.fixture(scope="module")
def r18(tmp_path_factory) -> Path:
    """resnet18's weights, random, as a .pth state dict (what torchvision ships)."""
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.manual_seed(1)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


def test_the_cache_is_read_and_a_missing_file_is_named_in_one_line(tmp_path):
    with pytest.raises(ConfigError) as err:
        TorchvisionNet(RGB, weights="DEFAULT")
    where = tmp_path / "torch_home" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    message = str(err.value)
    assert f"put https://download.pytorch.org/models/resnet18-f37072fd.pth at {where}" in message
    assert "\n" not in message and "model.weights=DEFAULT" in message
    cached = write_torch_home(tmp_path / "torch_home")
    assert cached == where
    for name in ("DEFAULT", "IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1"):
        model = TorchvisionNet(RGB, weights=name)
        state = torch.load(cached, weights_only=True)
        assert torch.equal(model.backbone.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])


def test_pickled_code_in_a_weights_file_or_the_cache_never_runs(tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": Payload()}, evil)
    with pytest.raises(ConfigError, match=r"holds Python objects .*refused without running"):
        TorchvisionNet(RGB, weights=str(evil))
    cached = write_torch_home(tmp_path / "torch_home")
    torch.save({"conv1.weight": Payload()}, cached)  # a planted cache file
    with pytest.raises(ConfigError, match=r"cached file .* holds Python objects"):
        TorchvisionNet(RGB, weights="DEFAULT")
    assert not (tmp_path / "PWNED").exists()


def test_a_pth_and_a_safetensors_file_load_the_same_weights(r18, tmp_path):
    from safetensors.torch import save_file

    state = torch.load(r18, weights_only=True)
    save_file(state, tmp_path / "r18.safetensors")
    wrapped = tmp_path / "ckpt.pt"  # a training script's checkpoint, saved under DataParallel
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, wrapped)
    for source in (r18, tmp_path / "r18.safetensors", wrapped):
        net = TorchvisionNet(RGB, weights=str(source)).backbone
        for key, value in net.state_dict().items():
            if not key.startswith("fc."):
                assert torch.equal(value, state[key]), (source, key)


def test_bad_choices_are_refused_in_one_line(r18, tmp_path):
    other = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34().state_dict(), other)
    (tmp_path / "w.bin").write_bytes(b"\0" * 8)
    cases = {
        ("resnet81", "DEFAULT"): r"not a torchvision classification model \(did you mean resnet18",
        ("fasterrcnn_resnet50_fpn", None): r"fasterrcnn_resnet50_fpn is not a torchvision class",
        ("resnet18", "ResNet50_Weights.IMAGENET1K_V2"): r"another network's; resnet18 takes",
        ("resnet18", "IMAGENET1K_V2"): r"did you mean IMAGENET1K_V1",
        ("resnet18", str(tmp_path / "w.bin")): r"must be \.pth or \.pt .* or \.safetensors",
        ("resnet18", str(tmp_path / "nope.pth")): r"no such file",
        ("resnet18", str(other)): r"does not fit this network \(unexpected: layer1\.2\.conv1",
    }
    for (arch, weights), message in cases.items():
        with pytest.raises(ConfigError, match=message) as err:
            TorchvisionNet(RGB, arch=arch, weights=weights)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="needs images"):
        TorchvisionNet(Spec((12,), 2, vocab_size=30), weights=None)
    for options, message in (
        ({"input_size": "x"}, r"model\.input_size=x must be N or \[height, width\]"),
        ({"mean": 0.5, "std": [1, 1, 1]}, r"model\.mean=0\.5 must be 3 values"),
        ({"mean": [0.5] * 3}, r"model\.mean and model\.std go together"),
        ({"mean": [0.5] * 3, "std": [0.2, 0, 0.2]}, r"model\.std=.* must be > 0"),
    ):
        with pytest.raises(ConfigError, match=message):
            TorchvisionNet(RGB, weights=None, **options)


@pytest.mark.parametrize(
    ("arch", "classifier"),
    [
        ("resnet18", "fc"),
        ("mobilenet_v3_small", "classifier.3"),
        ("efficientnet_b0", "classifier.1"),
        ("squeezenet1_1", "classifier.1"),  # a 1x1 conv
        ("vit_b_32", "heads.head"),
        ("inception_v3", "fc"),  # its auxiliary classifier left out
    ],
)
def test_the_classifier_is_replaced_and_the_backbone_holds_the_rest(arch, classifier):
    with torch.device("meta"):  # shapes only: no memory, no init cost
        model = TorchvisionNet(RGB, arch=arch, weights=None)
        out = model(torch.zeros(2, 3, 16, 16))
    assert out.shape == (2, 3)
    modules = dict(model.named_modules())
    assert type(modules[f"backbone.{classifier}"]).__name__ == "_Slot"
    assert sum(p.numel() for p in model.head.parameters()) == sum(
        p.numel() for p in model.parameters()
    ) - sum(p.numel() for p in model.backbone.parameters())
    assert {k.split(".")[0] for k in model.state_dict()} == {"backbone", "head"}


def test_size_and_normalisation_of_the_weights_are_applied_inside_the_model(r18):
    torch.manual_seed(0)
    model = TorchvisionNet(GREY, weights=str(r18)).eval()
    assert model.size == (224, 224)  # a file: the arch's DEFAULT weights' transforms
    x = torch.rand(2, 1, 16, 16)
    rgb = x.expand(-1, 3, -1, -1)
    big = nn.functional.interpolate(rgb, size=(224, 224), mode="bilinear")
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), model.backbone((big - mean) / std), atol=1e-5)
    plain = TorchvisionNet(GREY, weights=None, input_size=[20, 24], mean=[0.5] * 3, std=[0.25] * 3)
    assert plain.size == (20, 24) and torch.equal(plain.std, torch.full((1, 3, 1, 1), 0.25))
    assert TorchvisionNet(GREY, weights=None).size == (16, 16)  # no weights: the data's size
    with torch.device("meta"):
        assert TorchvisionNet(GREY, arch="vit_b_32", weights=None).size == (224, 224)


def test_freeze_takes_the_backbone_or_torchvision_names():
    model = TorchvisionNet(RGB, weights=None)
    freeze(model, ["layer4"])  # torchvision's name for backbone.layer4
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in model.named_parameters() if n.startswith("backbone.layer4.")}
    with pytest.raises(ConfigError, match=r"'bn1' could be backbone\.bn1, backbone\.layer1"):
        freeze(model, ["bn1"])
    freeze(model, ["backbone"])
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "head.weight",
        "head.bias",
    ]
    model.train()  # frozen batch norms keep their statistics
    assert not model.backbone.bn1.training and model.training


def test_a_model_rebuilt_for_a_checkpoint_reads_no_weights():
    from omegaconf import OmegaConf

    from dlx.models import build_model

    cfg = OmegaConf.create(
        {"_target_": "dlx.models.backbone.TorchvisionNet", "arch": "resnet18", "freeze": []}
    )
    with pytest.raises(ConfigError, match="not in torchvision's cache"):
        build_model(cfg, RGB)  # DEFAULT, nothing cached, offline
    assert isinstance(build_model(cfg, RGB, restore=True), TorchvisionNet)


@pytest.mark.parametrize(
    ("arch", "weights", "kept"),
    [
        ("googlenet", "DEFAULT", {"transform_input": True}),
        ("inception_v3", "DEFAULT", {"transform_input": True}),
        ("vit_b_16", "IMAGENET1K_SWAG_E2E_V1", {"image_size": 384}),
        ("maxvit_t", "DEFAULT", {}),
    ],
)
def test_the_network_is_the_one_torchvision_builds_for_those_weights(
    arch, weights, kept, monkeypatch
):
    # torchvision's builder, given the weights, loads them with weights_only=False; dlx
    # builds the same network itself and loads them safely. Fed the same state (with the
    # auxiliary classifiers googlenet's and inception's files hold), both networks must
    # take it and hold the same settings.
    from torchvision.models import _api

    from dlx.models.weights import _load, build_network, resolve

    with torch.device("meta"):
        source = resolve(arch, weights)
        ours = build_network(source)
        full = ours
        if "transform_input" in kept:  # the files hold the auxiliary classifiers
            full = torchvision.models.get_model(arch, aux_logits=True, init_weights=False)
        state = full.state_dict()
        monkeypatch.setattr(_api, "load_state_dict_from_url", lambda *a, **k: state)
        theirs = torchvision.models.get_model(arch, weights=weights)
        _load(ours, state, "test", "fc")  # strict but for the head and the auxiliaries
    # (inception's builder keeps its auxiliary classifier; dlx asks for the logits alone)
    assert {k for k in theirs.state_dict() if not k.startswith("AuxLogits.")} == set(
        ours.state_dict()
    )
    assert getattr(ours, "aux_logits", False) is False
    for key, value in kept.items():
        assert getattr(ours, key) == getattr(theirs, key) == value


def test_a_frozen_backbone_keeps_its_weights_while_the_head_trains(r18, tmp_path):
    write_image_folder(tmp_path / "imgs", {"cat": 6, "dog": 6}, size=(20, 14))
    run_dir, metrics = train(
        tmp_path,
        "model=torchvision",
        f"model.weights={r18}",
        "model.freeze=[backbone]",
        "model.input_size=32",
        "dataset=image_folder",
        f"dataset.root={tmp_path / 'imgs'}",
        "dataset.image_size=32",
        "trainer.max_epochs=2",
        "trainer.batch_size=4",
        "viz.enabled=false",
    )
    assert metrics["num_trainable_params"] == 512 * 2 + 2
    original = torch.load(r18, weights_only=True)
    saved = [
        torch.load(run_dir / "checkpoints" / f, weights_only=True)["model"]
        for f in ("previous.pt", "last.pt")  # after epoch 1, after epoch 2
    ]
    for state in saved:
        for key, value in original.items():
            if not key.startswith("fc."):  # weights and batch-norm statistics alike
                assert torch.equal(state[f"backbone.{key}"], value), key
    assert not torch.equal(saved[0]["head.weight"], saved[1]["head.weight"])


@pytest.mark.slow  # ~25 s: two stages of resnet18 and their figures (test_every_config runs
# the experiment in the default suite)
def test_the_finetune_experiment_trains_the_head_then_everything(tmp_path, monkeypatch):
    # DEFAULT weights from torchvision's cache; the photos under DLX_DATA_DIR/photos.
    cached = write_torch_home(tmp_path / "torch_home")
    write_image_folder(tmp_path / "data" / "photos", {"cat": 8, "dog": 8}, size=(20, 14))
    monkeypatch.setenv("DLX_DATA_DIR", str(tmp_path / "data"))
    run_dir, metrics = train(
        tmp_path, "experiment=finetune_image_folder", "debug=smoke", "model.input_size=32"
    )
    original = torch.load(cached, weights_only=True)
    head, tuned = (
        torch.load(run_dir / stage / "checkpoints" / "last.pt", weights_only=True)
        for stage in ("1_head", "2_finetune")
    )
    key = "backbone.layer1.0.conv1.weight"
    assert torch.equal(head["model"][key], original["layer1.0.conv1.weight"])  # frozen
    assert not torch.equal(tuned["model"][key], original["layer1.0.conv1.weight"])  # trained
    assert head["config"]["optimizer"]["lr"] == 1e-3 and tuned["config"]["optimizer"]["lr"] == 1e-4
    assert tuned["config"]["model"]["freeze"] == []
    assert metrics["head/num_trainable_params"] == 512 * 2 + 2
    assert metrics["finetune/num_trainable_params"] == metrics["num_params"]
    for stage in ("1_head", "2_finetune"):  # a classifier's figures, with its class names
        for figure in ("predictions", "confusion_matrix", "learning_curves"):
            assert (run_dir / stage / "plots" / f"{figure}.png").is_file(), (stage, figure)
