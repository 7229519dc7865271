"""Small calls of every kernel family, for `compute-sanitizer --tool memcheck` (run by test_cuda_kernels.py, or
by hand: compute-sanitizer --tool memcheck --error-exitcode 1 python3 tests/gpu/memcheck_cases.py).

Ragged lengths, a head dim that needs padding, GQA and strided views make out-of-bounds accesses visible."""
from __future__ import annotations

import torch

from sage_export.cuda_api import sageattn_cuda


def main() -> None:
    torch.manual_seed(0)
    arch = torch.cuda.get_device_capability()
    paths = ["sm80", "sm89"] if arch >= (8, 9) else ["sm80"]
    cases = 0
    for kernel in paths:
        for head_dim, qk_quant, pv_accum, smooth_q, causal in (
            (80, "int8", "fp32", 0, 1),
            (64, "int4", "fp16", 1, 0),
            (128, "int8", "fp16", 1, 1),
            (33, "int4", "fp32", 0, 0),
        ):
            for dtype in (torch.float16, torch.bfloat16):
                q = torch.randn(1, 77, 4, head_dim, device="cuda", dtype=dtype)  # BSNH
                k = torch.randn(1, 77, 2, head_dim, device="cuda", dtype=dtype)
                v = torch.randn(1, 77, 2, head_dim, device="cuda", dtype=dtype)
                out = sageattn_cuda(q, k, v, layout="BSNH", kernel=kernel, qk_quant=qk_quant, pv_accum=pv_accum,
                                    smooth_q=smooth_q, is_causal=causal)
                torch.cuda.synchronize()
                assert not torch.isnan(out).any()
                cases += 1
    print(f"memcheck cases run: {cases}")


if __name__ == "__main__":
    main()
