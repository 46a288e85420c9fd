"""`dlx data dataset=<name> [overrides]`: locate or download a data set, prepare and cache it,
then print what a training run would get: splits, shapes, dtype, class counts, vocabulary,
where the decoded tensors are cached. With `dataset.download=false` nothing is fetched: the
files on disk are only checked (and decoded into the cache).
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from omegaconf import DictConfig


def summarize(dataset: Any, data: Any, seconds: float) -> None:
    """Print the loaded data set as rich tables."""
    import torch
    from rich.console import Console
    from rich.table import Table

    from dlx.core.data import StreamSplit

    spec = data.spec
    names = spec.class_names or tuple(str(i) for i in range(spec.num_classes))
    splits = data.splits()
    table = Table(title=f"{dataset.name}: {spec.num_classes} classes", title_justify="left")
    table.add_column("split")
    table.add_column("samples", justify="right")
    table.add_column("x shape")
    table.add_column("x dtype")
    table.add_column("x range")
    for split_name, split in splits.items():
        streamed = isinstance(split, StreamSplit)  # read on the fly: look at a few samples
        x = split.take(slice(0, 64)).x if streamed else split.x
        lo, hi = (x.min().item(), x.max().item()) if len(x) else (0, 0)
        table.add_row(
            split_name + (" (streamed)" if streamed else ""),
            f"{len(split):,}",
            str([len(split), *x.shape[1:]]),
            str(x.dtype).replace("torch.", ""),
            f"{lo:g}..{hi:g}" + (" (first 64)" if streamed else ""),
        )
    counts = Table(title="samples per class", title_justify="left")
    counts.add_column("class")
    for split_name in splits:
        counts.add_column(split_name, justify="right")
    per_split = {
        k: torch.bincount(s.y.long(), minlength=spec.num_classes).tolist()
        for k, s in splits.items()
    }
    for i, name in enumerate(names):
        counts.add_row(
            name if name == str(i) else f"{i} {name}", *(f"{per_split[k][i]:,}" for k in splits)
        )

    console = Console()
    say = partial(console.print, soft_wrap=True)  # paths stay whole for copying
    console.print(table)
    console.print(counts)
    say(f"total: {sum(len(s) for s in splits.values()):,} samples")
    scale = "as stored (token ids)" if data.scale is None else f"x * {data.scale:g}"
    say(f"model input: {tuple(spec.input_shape)} per sample, {scale}")
    if spec.vocab_size is not None:
        note = getattr(dataset, "vocab_note", "")
        say(f"vocabulary: {spec.vocab_size:,}" + (f" ({note})" if note else ""))
    where = getattr(dataset, "root", None)
    if where is not None:
        say(f"source: {where}")
    files = [p for p in dataset.cache_files if p.exists()]
    if files:
        size = sum(p.stat().st_size for p in files) / 2**20
        how = "read from" if dataset.cache_hit else "written to"
        say(f"cache: {how} {', '.join(map(str, files))} ({size:,.1f} MiB)")
    elif dataset.cache_dir is None:
        say("cache: none (dataset.cache_dir is null)")
    else:
        say("cache: none needed (built in memory each time)")
    say(f"loaded in {seconds:.2f} s")


def prepare(cfg: DictConfig) -> None:
    import torch  # noqa: F401  (imported here so the timing below is the data's alone)

    from dlx.command import check
    from dlx.core.targets import instantiate

    check(cfg, None)
    dataset = instantiate(cfg.dataset, "dataset")
    t0 = time.perf_counter()
    data = dataset.load()
    summarize(dataset, data, time.perf_counter() - t0)


def main(argv: list[str]) -> None:
    from dlx.command import run_command

    run_command("data", prepare, argv)
