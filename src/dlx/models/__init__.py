"""Models: one file a family, plain nn.Modules built from a data Spec.

A model's YAML names its class by `_target_`; `dlx.train` calls it with `spec=` the data
set's Spec, so a new model needs no registry entry. The keys every model takes (ModelBase:
init_from, freeze) are dlx's to apply, not the constructor's.
"""

import dataclasses
from contextvars import ContextVar
from typing import Any

from dlx.core.schemas import ModelBase

# Model options dlx handles itself (transfer learning), not passed to the constructor.
TRANSFER_KEYS = tuple(f.name for f in dataclasses.fields(ModelBase))
_RESTORING: ContextVar[bool] = ContextVar("dlx_restoring", default=False)


def restoring() -> bool:
    """True while a model is built for weights that come next (a checkpoint, or none at
    all: `dlx info`): a model may skip reading pretrained weights then."""
    return _RESTORING.get()


def build_model(model_cfg: Any, spec: Any, restore: bool = False) -> Any:
    """Instantiate `model_cfg` (allow-listed) for a data Spec, leaving out dlx's own keys.
    restore=True: its weights are about to be replaced (see `restoring`)."""
    from omegaconf import OmegaConf

    from dlx.core.targets import instantiate

    # Resolved against the whole config first: a copy of the model node alone would lose
    # interpolations such as `random_state: ${seed}`.
    node = OmegaConf.to_container(model_cfg, resolve=True)
    kept = OmegaConf.create({k: v for k, v in node.items() if k not in TRANSFER_KEYS})
    token = _RESTORING.set(restore)
    try:
        return instantiate(kept, "model", spec=spec)
    finally:
        _RESTORING.reset(token)
