"""`dlx info [overrides]`: the composed model's summary, without data files or training."""

from __future__ import annotations

from omegaconf import DictConfig

from dlx.compose import compose
from dlx.errors import reports_errors


def example_input(spec, batch: int = 1):
    import torch

    if spec.vocab_size is not None:  # token ids
        return torch.ones((batch, *spec.input_shape), dtype=torch.long)
    return torch.zeros((batch, *spec.input_shape))


@reports_errors
def main(argv: list[str]) -> None:
    cfg: DictConfig = compose("train", argv)
    from dlx.models import build_model
    from dlx.summary import render, summarize
    from dlx.targets import instantiate

    dataset = instantiate(cfg.dataset, "dataset")
    spec = dataset.spec  # no file is read for this
    model = build_model(cfg.model, spec)
    import torch

    if not isinstance(model, torch.nn.Module):  # a runner: scikit-learn, Q-learning
        from omegaconf import OmegaConf

        print(
            f"{type(model).__name__} (not a torch model; its size is known once fitted, "
            "and dlx train reports it as num_params):"
        )
        print(OmegaConf.to_yaml(cfg.model), end="")
        return
    rows = summarize(model, example_input(spec))
    render(model, rows, f"{type(model).__name__} on {dataset.name} {tuple(spec.input_shape)}")
