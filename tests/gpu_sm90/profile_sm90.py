"""Runs the sm90 path once on one shape, for Nsight Compute (not a test):

    ncu --clock-control none -k regex:sage_sm90_attention_kernel -c 1 --section WarpStateStats \\
        python3 tests/gpu_sm90/profile_sm90.py --n 8192 --d 128
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from sm90_binding import Sm90Library  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--n", type=int, default=8192)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--causal", type=int, default=0)
    ap.add_argument("--lib", default=None)
    args = ap.parse_args()
    import torch

    lib = Sm90Library(args.lib)
    q, k, v = (torch.randn(args.batch, args.heads, args.n, args.d, dtype=torch.float16, device="cuda") for _ in range(3))
    out, _ = lib.attention(q, k, v, is_causal=args.causal)
    torch.cuda.synchronize()
    print("ok", float(out.float().abs().mean()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
