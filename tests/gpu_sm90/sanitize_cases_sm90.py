"""Small calls of every sm_90a attention instantiation, for compute-sanitizer (run by test_sm90_sanitizer.py, or
by hand: compute-sanitizer --tool racecheck python3 tests/gpu_sm90/sanitize_cases_sm90.py).

Ragged lengths (partial TMA boxes, partial 64-key blocks), a head dim that needs padding, GQA, both causal
alignments with Sq != Skv and every output type make out-of-bounds accesses and barrier mistakes visible. Calls
with kv_len <= 2048 run the single-launch (clustered) quantization; a last set runs the same with the two passes."""
from __future__ import annotations

import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import torch  # noqa: E402

from sm90_binding import Sm90Library  # noqa: E402


def main() -> None:
    lib = Sm90Library()
    torch.manual_seed(0)
    cases = 0
    for head_dim, q_len, kv_len, causal, alignment, granularity in (
        (128, 150, 150, 0, "top_left", "per_thread"),
        (128, 77, 200, 1, "bottom_right", "per_warp"),
        (80, 200, 77, 1, "top_left", "per_block"),
        (64, 130, 260, 0, "top_left", "per_thread"),
        (64, 260, 130, 1, "bottom_right", "per_thread"),
    ):
        for dtype in (torch.float16, torch.bfloat16, torch.float32):
            q = torch.randn(1, 4, q_len, head_dim, device="cuda", dtype=dtype)
            k = torch.randn(1, 2, kv_len, head_dim, device="cuda", dtype=dtype)
            v = torch.randn(1, 2, kv_len, head_dim, device="cuda", dtype=dtype)
            out = torch.full_like(q, float("nan"))
            lib.attention(q, k, v, out, is_causal=causal, causal_alignment=alignment, qk_granularity=granularity)
            torch.cuda.synchronize()
            if not torch.isfinite(out).all():
                raise SystemExit(f"non-finite output: D={head_dim} Sq={q_len} Skv={kv_len} causal={causal} {dtype}")
            cases += 1
    # Two CTAs walk every tile (Q reuse, the stage sequence across tiles, causal stage releases).
    os.environ["SAGE_SM90_GRID_LIMIT"] = "2"
    for head_dim, causal in ((128, 1), (64, 0), (128, 0)):
        q = torch.randn(2, 2, 300, head_dim, device="cuda", dtype=torch.float16)
        k = torch.randn(2, 1, 420, head_dim, device="cuda", dtype=torch.float16)
        v = torch.randn(2, 1, 420, head_dim, device="cuda", dtype=torch.float16)
        out = torch.full_like(q, float("nan"))
        lib.attention(q, k, v, out, is_causal=causal, causal_alignment="bottom_right")
        torch.cuda.synchronize()
        if not torch.isfinite(out).all():
            raise SystemExit(f"non-finite output with SAGE_SM90_GRID_LIMIT=2: D={head_dim} causal={causal}")
        cases += 1
    del os.environ["SAGE_SM90_GRID_LIMIT"]
    # A cluster of 15 CTAs (non-portable size): kv_len 1900.
    for head_dim in (128, 64):
        q = torch.randn(1, 2, 130, head_dim, device="cuda", dtype=torch.float16)
        k = torch.randn(1, 1, 1900, head_dim, device="cuda", dtype=torch.float16)
        v = torch.randn(1, 1, 1900, head_dim, device="cuda", dtype=torch.float16)
        out = torch.full_like(q, float("nan"))
        lib.attention(q, k, v, out)
        torch.cuda.synchronize()
        if not torch.isfinite(out).all():
            raise SystemExit(f"non-finite output with kv_len 1900: D={head_dim}")
        cases += 1
    # The calls above with kv_len <= 2048 quantized K and V in clusters; the same shapes once with the two passes.
    os.environ["SAGE_SM90_KV_CLUSTER"] = "0"
    for head_dim in (128, 64):
        q = torch.randn(1, 4, 150, head_dim, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, 2, 170, head_dim, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(1, 2, 170, head_dim, device="cuda", dtype=torch.bfloat16)
        out = torch.full_like(q, float("nan"))
        lib.attention(q, k, v, out)
        torch.cuda.synchronize()
        if not torch.isfinite(out).all():
            raise SystemExit(f"non-finite output with SAGE_SM90_KV_CLUSTER=0: D={head_dim}")
        cases += 1
    del os.environ["SAGE_SM90_KV_CLUSTER"]
    print(f"{cases} sm90 calls ran")


if __name__ == "__main__":
    main()
