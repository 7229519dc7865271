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
        cases += mask_cases(kernel)
    if arch == (9, 0):  # the Hopper path: its masked kernels (it runs fp8 P~.V without smooth_q only)
        cases += mask_cases("sm90")
    print(f"memcheck cases run: {cases}")


def mask_cases(kernel: str) -> int:
    """The optional inputs: key_lengths (one of them 0), a key-padding mask with holes, general bool and additive
    masks with odd key counts (unpaired loads), causal bottom_right with q_len > kv_len."""
    q = torch.randn(2, 4, 77, 80, device="cuda", dtype=torch.float16)
    k = torch.randn(2, 2, 131, 80, device="cuda", dtype=torch.float16)
    v = torch.randn(2, 2, 131, 80, device="cuda", dtype=torch.float16)
    lengths = torch.tensor([0, 70], dtype=torch.int32, device="cuda")
    holes = torch.rand(2, 131, device="cuda") > 0.3
    general = torch.rand(2, 1, 77, 131, device="cuda") > 0.3
    additive = torch.randn(1, 4, 77, 131, device="cuda", dtype=torch.bfloat16)
    cases = 0
    configs = (("fp8_e4m3", 0),) if kernel == "sm90" else (("fp16", 1), ("fp8_e4m3", 0))
    for pv_dtype, smooth_q in configs:
        for extra in ({"key_lengths": lengths}, {"attn_mask": holes, "key_lengths": lengths},
                      {"attn_mask": general}, {"attn_mask": additive, "is_causal": 1}):
            out = sageattn_cuda(q, k, v, kernel=kernel, pv_dtype=pv_dtype, smooth_q=smooth_q, **extra)
            torch.cuda.synchronize()
            assert not torch.isnan(out).any()
            cases += 1
        out = sageattn_cuda(q, k[:, :, :40], v[:, :, :40], kernel=kernel, pv_dtype=pv_dtype, is_causal=1,
                            causal_alignment="bottom_right")
        torch.cuda.synchronize()
        assert not torch.isnan(out).any()
        cases += 1
    return cases


if __name__ == "__main__":
    main()
