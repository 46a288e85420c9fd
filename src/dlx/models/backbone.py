"""Any torchvision classification network as a dlx model, pretrained or not, its classifier
replaced for the data set's classes (`model=torchvision model.arch=resnet18`).

The network sits in `backbone` and its new classifier in `head`, so `model.freeze=[backbone]`
trains the head alone (torchvision's own names work too: `layer4`, `features`). The
classifier found is the last Linear (or squeezenet's 1x1 conv) giving the 1000 ImageNet
classes: resnet's `fc`, mobilenet's and efficientnet's `classifier[-1]`, vit's `heads.head`.

What the weights were trained on travels inside the model, so a checkpoint, `dlx eval` and
any export see images the same way: grey images are repeated to 3 channels, images of
another size are resized to the weights' size (`model.input_size`), and normalised with the
weights' mean and std (`model.mean`, `model.std`). Resizing in the model rather than refusing
a size keeps every network usable on any data (vit needs exactly its size); a build that will
resize says so once, since decoding at that size (`dataset.image_size`) is cheaper and sharper.
Weights are read by dlx/models/weights.py: never by unpickling.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlx.core.data import Spec
from dlx.core.errors import ConfigError
from dlx.models.weights import Weights, build_network, load_file, load_named, resolve

log = logging.getLogger("dlx")
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class _Slot(nn.Module):
    """Stands where the network's classifier was and calls the model's `head`. The head is
    held as a plain reference, not a submodule: it is registered once, on the model, so
    `backbone` holds every weight but the head's (what `model.freeze=[backbone]` needs)."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_head", head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._head(x)


class TorchvisionNet(nn.Module):
    def __init__(
        self,
        spec: Spec,
        arch: str = "resnet18",
        weights: str | None = "DEFAULT",
        input_size: int | Sequence[int] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        channels_last: bool = False,
    ) -> None:
        from dlx.models import restoring

        shape = _image_shape(spec)
        super().__init__()
        source = resolve(arch, weights)
        self.backbone = build_network(source)
        name, old = _classifier(self.backbone, source.arch)
        self.grey = shape[0] == 1
        self.size = _size(input_size, source, shape, self.backbone)
        mean, std = _normalisation(mean, std, source)
        if not restoring():  # a checkpoint's weights come next: no need to read these
            if source.file is not None:
                load_file(self.backbone, source, name)
            elif source.named is not None:
                load_named(self.backbone, source, name)
        if isinstance(old, nn.Linear):
            self.head: nn.Module = nn.Linear(old.in_features, spec.num_classes)
        else:
            self.head = nn.Conv2d(old.in_channels, spec.num_classes, 1)
        self.backbone.set_submodule(name, _Slot(self.head))
        self.normalise = mean is not None
        # Not in the state dict: the config says them, and a checkpoint stays loadable
        # whatever normalisation the next run picks.
        self.register_buffer("mean", torch.tensor(mean or [0.0] * 3).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(std or [1.0] * 3).view(1, 3, 1, 1), False)
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)
        if not restoring():
            _describe(source, name, self.head, self.size, shape, self.normalise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.grey and x.shape[1] == 1:  # pretrained networks take RGB: grey is r = g = b
            x = x.expand(-1, 3, -1, -1)
        if tuple(x.shape[-2:]) != self.size:
            shrink = x.shape[-2] > self.size[0] or x.shape[-1] > self.size[1]
            x = F.interpolate(x, size=self.size, mode="bilinear", antialias=shrink)
        if self.normalise:
            x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.backbone(x)

    def train(self, mode: bool = True) -> TorchvisionNet:
        """As nn.Module.train, but frozen batch norms stay in eval mode: a frozen backbone
        keeps its running statistics too (Keras' trainable=False does the same), so its
        features are exactly the pretrained ones."""
        super().train(mode)
        if mode:
            for m in self.modules():
                if (
                    isinstance(m, _BATCHNORM)
                    and m.weight is not None
                    and not m.weight.requires_grad
                ):
                    m.eval()
        return self


def _image_shape(spec: Spec | None) -> tuple[int, int, int]:
    if spec is None or spec.vocab_size is not None or len(spec.input_shape) != 3:
        what = "no data" if spec is None else f"inputs of shape {tuple(spec.input_shape)}"
        raise ConfigError(f"model=torchvision needs images (channels, height, width); got {what}")
    c, h, w = (int(s) for s in spec.input_shape)
    if c not in (1, 3):
        raise ConfigError(f"model=torchvision takes grey or RGB images; these have {c} channels")
    return c, h, w


def _classifier(net: nn.Module, arch: str) -> tuple[str, nn.Linear | nn.Conv2d]:
    """The last Linear (or 1x1 conv: squeezenet) giving the network's 1000 classes."""
    found = None
    for name, m in net.named_modules():
        if (isinstance(m, nn.Linear) and m.out_features == 1000) or (
            isinstance(m, nn.Conv2d) and m.out_channels == 1000 and m.kernel_size == (1, 1)
        ):
            found = (name, m)
    if found is None:
        raise ConfigError(f"model.arch={arch}: no classifier layer of 1000 outputs to replace")
    return found


def _size(
    given: int | Sequence[int] | None, source: Weights, shape: tuple, net: nn.Module
) -> tuple[int, int]:
    if given is None:
        crop = source.transforms.get("crop_size")
        if crop:
            return int(crop[0]), int(crop[-1])
        fixed = getattr(net, "image_size", None)  # vit takes one size only
        if isinstance(fixed, int):
            return fixed, fixed
        low = source.min_size  # e.g. inception's 75x75: its convolutions need that much
        return max(shape[1], low[0]), max(shape[2], low[1])
    size = [given] * 2 if isinstance(given, int) else list(given)
    if len(size) != 2 or not all(isinstance(s, int) and s >= 1 for s in size):
        raise ConfigError(f"model.input_size={given} must be N or [height, width]")
    return size[0], size[1]


def _normalisation(
    mean: Sequence[float] | None, std: Sequence[float] | None, source: Weights
) -> tuple[list[float] | None, list[float] | None]:
    mean = _rgb("mean", mean) if mean is not None else source.transforms.get("mean")
    std = _rgb("std", std) if std is not None else source.transforms.get("std")
    if (mean is None) != (std is None):
        raise ConfigError("model.mean and model.std go together: set both (or neither)")
    if std is not None and min(std) <= 0:
        raise ConfigError(f"model.std={std} must be > 0")
    return mean, std


def _rgb(key: str, values: object) -> list[float]:
    numbers = list(values) if isinstance(values, Sequence) and not isinstance(values, str) else []
    if len(numbers) != 3 or not all(isinstance(v, (int, float)) for v in numbers):
        raise ConfigError(f"model.{key}={values} must be 3 values (red, green, blue) in 0..1")
    return [float(v) for v in numbers]


def _describe(source: Weights, name: str, head: nn.Module, size: tuple, shape: tuple, norm: bool):
    log.info(
        "model=torchvision %s: weights %s; classifier %s -> %s; input %dx%d%s",
        source.arch,
        source.describe(),
        name,
        head,
        *size,
        ", normalised with the weights' mean/std" if norm else "",
    )
    if (shape[1], shape[2]) != size:
        log.warning(
            "model=torchvision %s: the data's %dx%d images are resized to %dx%d inside the "
            "model (its input size); set dataset.image_size=%s to decode them at that size, "
            "or model.input_size=%s to train at the data's size",
            source.arch,
            shape[1],
            shape[2],
            *size,
            size[0] if size[0] == size[1] else list(size),
            shape[1] if shape[1] == shape[2] else [shape[1], shape[2]],
        )
