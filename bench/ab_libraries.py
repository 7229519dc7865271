"""A/B timing of two builds of the CUDA library in one process (e.g. before and after a kernel change):

    python3 bench/ab_libraries.py old/libsage_cuda.so new/libsage_cuda.so --seqs 8192 --causal 0 1

Same inputs, same contenders as bench/bench_attention.py ("sage sm80 kernel"/"sage sm80 e2e" by default), the two
libraries alternate `--rounds` times so that clock drift hits both alike; prints the median TOPS of each and the
ratio new/old. Libraries of C API version 1 work too (sage_export.cuda_api falls back to the version 1 calls).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_attention as ba  # noqa: E402
from sage_export import cuda_api  # noqa: E402


def use_library(path: str) -> None:
    os.environ["SAGE_CUDA_LIBRARY"] = path
    cuda_api._library.cache_clear()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--seqs", type=int, nargs="+", default=[8192])
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--causal", type=int, nargs="+", default=[0, 1])
    p.add_argument("--only", nargs="+", default=["sage sm80 kernel", "sage sm80 e2e"])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    contenders = [c for c in ba.CONTENDERS if c.name in args.only]
    for n in args.seqs:
        for causal in args.causal:
            torch.manual_seed(n)
            q, k, v = (torch.randn(4, 32, n, args.dim, device="cuda", dtype=torch.float16) for _ in range(3))
            flops = 4.0 * 4 * 32 * n * n * args.dim / (2 if causal else 1)
            for c in contenders:
                tops: dict[str, list[float]] = {"old": [], "new": []}
                for _ in range(args.rounds):
                    for tag in ("old", "new"):
                        use_library(getattr(args, tag))
                        fn = c.make(q, k, v, bool(causal))
                        fn()
                        tops[tag].append(flops / (ba.time_ms(fn, 25, 100) * 1e-3) / 1e12)
                        del fn
                old, new = statistics.median(tops["old"]), statistics.median(tops["new"])
                print(f"N={n} causal={causal} {c.name:18s} old {old:6.1f} TOPS  new {new:6.1f} TOPS  "
                      f"new/old {new / old:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
