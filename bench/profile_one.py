"""One SageAttention call at a benchmark shape, for Nsight Compute (each kernel of the call is profiled):

    ncu --clock-control none --section SpeedOfLight python3 bench/profile_one.py --seq 8192 --dim 128

Also prints the per-phase time (preprocessing alone, attention kernel alone, end to end) with CUDA events."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sage_export import cuda_api  # noqa: E402


def time_ms(fn, reps: int) -> float:
    fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / reps


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seq", type=int, default=8192)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--causal", type=int, default=0)
    p.add_argument("--kernel", default="sm80")
    p.add_argument("--pv-dtype", default="fp16")
    p.add_argument("--reps", type=int, default=0, help="time each phase over this many runs (0: one call only)")
    a = p.parse_args()
    q, k, v = (torch.randn(a.batch, a.heads, a.seq, a.dim, device="cuda", dtype=torch.float16) for _ in range(3))
    call = cuda_api.CudaAttentionCall(q, k, v, is_causal=a.causal, kernel=a.kernel, pv_dtype=a.pv_dtype)
    print(call.describe())
    if a.reps == 0:
        call.run()
        torch.cuda.synchronize()
        return
    flops = 4.0 * a.batch * a.heads * a.seq**2 * a.dim / (2 if a.causal else 1)
    for name, phases in (("preprocess", cuda_api.PHASE_PREPROCESS), ("attention", cuda_api.PHASE_ATTENTION),
                         ("end to end", cuda_api.PHASE_ALL)):
        ms = time_ms(lambda: call.run(phases), a.reps)
        print(f"{name:10s} {ms:8.3f} ms  {flops / ms / 1e9:7.1f} TOPS-equivalent")


if __name__ == "__main__":
    main()
