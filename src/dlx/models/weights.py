"""Which torchvision network and weights `model.arch` / `model.weights` name, and reading them.

torchvision's builders read their weights with `torch.load(weights_only=False)` (torch.hub's
default), which would run whatever a planted file in the cache pickles. So dlx builds the
network without weights, the way the builder builds it for them, and reads the file itself:
`get_state_dict(weights_only=True)` for torchvision's cache and download (hash-checked), a
local `.pth`/`.pt` with `torch.load(weights_only=True)`, `.safetensors` with the safetensors
package (no code in that format at all).
"""

from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlx.core.errors import ConfigError
from dlx.core.io import why_unloadable

FILES = (".pth", ".pt", ".safetensors")
# Networks with auxiliary classifiers: their training output is a tuple no task scores; the
# builders drop them on request (aux_logits=False), with or without weights.
_AUX = ("googlenet", "inception_v3")


@dataclass
class Weights:
    """What model.arch and model.weights resolve to."""

    arch: str
    given: str = ""  # model.weights as written
    named: Any = None  # a torchvision WeightsEnum member, read from its cache or URL
    file: Path | None = None  # a local state dict
    # The weights whose network and transforms (size, mean, std) are taken: the named ones,
    # or the arch's DEFAULT for a file (most often a copy of them).
    like: Any = None
    transforms: dict[str, list] = field(default_factory=dict)
    min_size: tuple[int, int] = (1, 1)  # the smallest input the network takes
    read_from: str = ""

    def describe(self) -> str:
        if self.named is None and self.file is None:
            return "none (random init)"
        what = str(self.file) if self.named is None else str(self.named)
        return what + (f" from {self.read_from}" if self.read_from else "")

    def option(self) -> str:
        """model.weights as typed, and the weights it names when that differs."""
        named = str(self.named)
        return f"model.weights={self.given}" + (f" ({named})" if named != self.given else "")


def resolve(arch: str, weights: Any) -> Weights:
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    if arch not in names:
        close = difflib.get_close_matches(str(arch), names, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "e.g. resnet18, efficientnet_b0"
        raise ConfigError(
            f"model.arch={arch} is not a torchvision classification model ({hint} "
            "torchvision.models.list_models(module=torchvision.models) lists them)"
        )
    enum = torchvision.models.get_model_weights(arch)
    if weights is None:
        return Weights(arch, min_size=tuple(enum.DEFAULT.meta.get("min_size", (1, 1))))
    text = str(weights)
    owner, _, member = text.rpartition(".")
    if owner.endswith("_Weights") and owner != enum.__name__:
        raise ConfigError(
            f"model.weights={text}: those are another network's; {arch} takes DEFAULT, "
            f"{_names(enum)}, a .pth/.pt/.safetensors file, or null"
        )
    if member in enum.__members__ and (not owner or owner == enum.__name__):
        named = enum[member]
        return Weights(arch, text, named, like=named, transforms=_transforms(named))
    path = Path(text).expanduser()
    if path.suffix.lower() not in FILES:
        if path.is_file():
            raise ConfigError(
                f"model.weights={text}: a weights file must be .pth or .pt (torch.save of a "
                "state dict) or .safetensors"
            )
        close = difflib.get_close_matches(member, list(enum.__members__), n=1)
        raise ConfigError(
            f"model.weights={text} is none of DEFAULT, {_names(enum)}, a .pth/.pt/"
            f".safetensors file, or null" + (f" (did you mean {close[0]}?)" if close else "")
        )
    if not path.is_file():
        raise ConfigError(f"model.weights={text}: no such file")
    like = enum.DEFAULT
    return Weights(arch, text, file=path, like=like, transforms=_transforms(like))


def _names(enum: Any) -> str:
    return ", ".join(f"{enum.__name__}.{m.name}" for m in enum)


def _transforms(member: Any) -> dict[str, list]:
    t = member.transforms()
    keys = ("crop_size", "mean", "std")
    return {k: list(getattr(t, k)) for k in keys if getattr(t, k, None) is not None}


def build_network(source: Weights) -> nn.Module:
    """The torchvision network, without weights, as its builder makes it for `source.like`."""
    import torchvision

    kwargs: dict[str, Any] = {}
    like = source.like
    if source.arch in _AUX:
        # What the builders set with weights (init_weights given: no FutureWarning)
        kwargs.update(aux_logits=False, init_weights=like is None)
        if like is not None:
            kwargs["transform_input"] = True
    elif like is not None and source.arch.startswith("vit_"):
        kwargs["image_size"] = like.meta["min_size"][0]
    elif like is not None and source.arch == "maxvit_t":
        kwargs["input_size"] = like.meta["min_size"]
    if like is not None:
        kwargs["num_classes"] = len(like.meta["categories"])
    return torchvision.models.get_model(source.arch, weights=None, **kwargs)


def cache_path(named: Any) -> Path:
    """Where torchvision reads (and downloads) these weights: $TORCH_HOME/hub/checkpoints."""
    from urllib.parse import urlparse

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(named.url).path)


def load_named(net: nn.Module, source: Weights, head: str) -> None:
    """torchvision's weights from its cache, downloaded (hash-checked) when not there."""
    named, where = source.named, source.option()
    path = cache_path(named)
    cached = path.is_file()
    try:
        state = named.get_state_dict(
            progress=sys.stderr.isatty(), check_hash=True, weights_only=True
        )
    except Exception as err:  # urllib, ssl, hash and torch.load raise many types
        if cached:
            kind, detail = why_unloadable(err)
            why = (
                "holds Python objects, refused without running them"
                if kind == "objects"
                else (f"does not load: {detail or _first_line(err)}")
            )
            raise ConfigError(
                f"{where}: torchvision's cached file {path} {why}; delete it "
                "(it is downloaded again) or put the original file there"
            ) from None
        raise ConfigError(
            f"{where}: not in torchvision's cache and the download failed "
            f"({_first_line(err)}); put {named.url} at {path} (the folder is $TORCH_HOME/hub/"
            "checkpoints), or give the file itself: model.weights=<path>.pth"
        ) from None
    source.read_from = str(path)
    _load(net, state, where, head)


def load_file(net: nn.Module, source: Weights, head: str) -> None:
    """A local state dict: .pth/.pt (torch.save) or .safetensors."""
    path = source.file
    assert path is not None
    where = f"model.weights={path}"
    if path.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file as read_safetensors
        except ImportError:
            raise ConfigError(
                f"{where}: reading .safetensors needs the safetensors package (pip install "
                "'dlx[vision]')"
            ) from None
        try:
            state = read_safetensors(str(path), device="cpu")
        except Exception as err:  # its Rust reader raises its own error types
            raise ConfigError(f"{where} is not a readable .safetensors file ({err})") from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for bad files
            kind, detail = why_unloadable(err)
            why = {
                "objects": f"holds Python objects ({detail}), not just weights; refused "
                "without running it",
                "corrupt": f"is truncated or corrupt ({detail})",
            }.get(kind, "is not a file torch.save wrote")
            raise ConfigError(f"{where} {why}") from None
    source.read_from = ""
    _load(net, _state_dict(state, where), where, head)


def _state_dict(obj: Any, where: str) -> dict[str, torch.Tensor]:
    """The tensors of a loaded file: a state dict, or one under 'state_dict' or 'model'
    (training scripts' checkpoints); a DataParallel 'module.' prefix is dropped."""
    if isinstance(obj, dict) and "dlx_version" in obj:
        raise ConfigError(f"{where} is a dlx checkpoint: start from it with model.init_from=")
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise ConfigError(f"{where} holds no state dict (a mapping of names to tensors)")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    return obj


def _load(net: nn.Module, state: dict[str, torch.Tensor], where: str, head: str) -> None:
    """Load strictly, but for the classifier (`head`): its classes are not the data's and
    it is replaced, so a file's classifier of any shape (or none) is fine. The weights of
    parts the network was built without (googlenet's and inception's auxiliary classifiers,
    set to None) are left out, as torchvision's builders do."""
    own = net.state_dict()
    state = {
        k: v
        for k, v in state.items()
        if not k.startswith(head + ".") and getattr(net, k.split(".")[0], net) is not None
    }
    missing = [k for k in own if k not in state and not k.startswith(head + ".")]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        parts = [
            f"{what}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for what, keys in (
                ("shapes (file vs network)", wrong),
                ("missing", missing),
                ("unexpected", unexpected),
            )
            if keys
        ]
        raise ConfigError(f"{where} does not fit this network ({'; '.join(parts)})")
    net.load_state_dict(state, strict=False)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
