"""The book's 6-14 LSTM with recurrent dropout: the cell loop, the hand-written BPTT in torch
ops (`fused_bptt`) and its time loop in C (`native`, the LSTM's default where it builds, with
the embedding's lookup and input dropouts in C too; `native_torch_embedding`: those in torch
ops, as before 2026-12-06).

One process, the contenders alternating rep by rep (so a load spike on this shared machine
hits both), synthetic token ids (the timing does not depend on the text). Per contender the
median of --reps forward + backward passes of one batch (N=32, T=80, embed 128, hidden 128,
all three dropouts .2 as in the listing) after --warmup untimed ones, the ratio of the medians,
and an epoch estimate (25,000 samples = 782 batches). A full train step (Adam included) and
an evaluation forward (no masks: `fused_bptt` hands it to torch's fused kernel) are timed
the same way.

    python bench/recurrent.py                 # lstm, 20 reps
    python bench/recurrent.py --cell gru --reps 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from dlx.core.data import Spec
from dlx.models.recurrent import RecurrentClassifier

BATCHES_PER_EPOCH = -(-25_000 // 32)


def build(impl: str, cell: str, dtype: torch.dtype) -> RecurrentClassifier:
    torch.manual_seed(0)
    spec = Spec((80,), 2, vocab_size=20000)
    drops = {"embedding_dropout": 0.2, "dropout": 0.2, "recurrent_dropout": 0.2}
    torch_front = impl == "native_torch_embedding"
    model = RecurrentClassifier(spec, cell=cell, impl="native" if torch_front else impl, **drops)
    if torch_front:  # the same C loop, fed by nn.Embedding and the masks in torch ops
        model._front_in_c = lambda: False
    return model.to(dtype).train()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", default="lstm", choices=("lstm", "gru"))
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--float64", action="store_true")
    args = ap.parse_args()
    dtype = torch.float64 if args.float64 else torch.float32
    ids = torch.randint(3, 20000, (32, 80))
    y = torch.randint(0, 2, (32,)).to(dtype)
    # the C loop runs the LSTM in float32 only
    c_loop = args.cell == "lstm" and not args.float64
    native = ("native", "native_torch_embedding") if c_loop else ()
    impls = ("loop", "fused_bptt", *native)
    models = {i: build(i, args.cell, dtype) for i in impls}
    # fused, as dlx runs it (optimizer.fused: null picks the fused kernel on a CPU)
    opts = {i: torch.optim.Adam(m.parameters(), fused=True) for i, m in models.items()}

    def fwd_bwd(impl: str) -> None:
        loss = torch.nn.functional.binary_cross_entropy_with_logits(models[impl](ids), y)
        loss.backward()

    def train_step(impl: str) -> None:
        opts[impl].zero_grad(set_to_none=True)
        fwd_bwd(impl)
        opts[impl].step()

    @torch.inference_mode()
    def evaluate(impl: str) -> None:  # the trainer's evaluation: no masks, eval batch 32
        models[impl].eval()(ids)
        models[impl].train()

    results = {}
    for name, fn in (("fwd_bwd", fwd_bwd), ("train_step", train_step), ("eval", evaluate)):
        times: dict[str, list[float]] = {i: [] for i in impls}
        for rep in range(args.warmup + args.reps):
            for impl in impls:
                t0 = time.perf_counter()
                fn(impl)
                if rep >= args.warmup:
                    times[impl].append(time.perf_counter() - t0)
        med = {i: statistics.median(t) for i, t in times.items()}
        results[name] = {
            **{f"{i}_ms": round(1e3 * m, 2) for i, m in med.items()},
            **{f"{i}_min_ms": round(1e3 * min(times[i]), 2) for i in impls},
            **{f"ratio_loop_over_{i}": round(med["loop"] / med[i], 2) for i in impls[1:]},
            **{f"{i}_epoch_s": round(m * BATCHES_PER_EPOCH, 1) for i, m in med.items()},
        }
    info = {"cell": args.cell, "dtype": str(dtype), "threads": torch.get_num_threads()}
    print(json.dumps({**info, "reps": args.reps, **results}, indent=1))


if __name__ == "__main__":
    main()
