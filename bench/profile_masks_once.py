"""One call each of the unmasked op on N/2 keys and of key_lengths = N/2 over N keys (for `ncu` per-kernel
times: ncu --metrics gpu__time_duration.sum python3 bench/profile_masks_once.py --kernel sm90)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sage_export import cuda_api  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kernel", default="sm90")
    ap.add_argument("--n", type=int, default=8192)
    args = ap.parse_args()
    b, h, n, d = 4, 32, args.n, 128
    q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=torch.float16) for _ in range(3))
    half = n // 2
    lengths = torch.full((b,), half, dtype=torch.int32, device="cuda")
    attrs = {"kernel": args.kernel, "pv_dtype": "fp8_e4m3"}
    plain = cuda_api.CudaAttentionCall(q, k[:, :, :half].contiguous(), v[:, :, :half].contiguous(), **attrs)
    keyed = cuda_api.CudaAttentionCall(q, k, v, key_lengths=lengths, **attrs)
    for call in (plain, keyed, plain, keyed):
        call.run()
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
