"""The machine's matmul peak as torch sees it: large square products, best of several.
Prints one JSON line: {"fp32_gflops": ..., "bf16_gflops": ...}.
"""

from __future__ import annotations

import json
import time

import torch


def gflops(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


if __name__ == "__main__":
    out = {"fp32_gflops": gflops(torch.float32), "bf16_gflops": gflops(torch.bfloat16)}
    out["threads"] = torch.get_num_threads()
    print(json.dumps(out))
