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


def _run_case(lib: Sm90Library, what: str, *, batch: int, q_heads: int, kv_heads: int, q_len: int, kv_len: int,
              head_dim: int, dtype, **attrs) -> None:
    """One call on fresh Gaussian inputs, its output poisoned first; raises SystemExit naming `what` unless finite."""
    q = torch.randn(batch, q_heads, q_len, head_dim, device="cuda", dtype=dtype)
    k = torch.randn(batch, kv_heads, kv_len, head_dim, device="cuda", dtype=dtype)
    v = torch.randn(batch, kv_heads, kv_len, head_dim, device="cuda", dtype=dtype)
    out = torch.full_like(q, float("nan"))
    lib.attention(q, k, v, out, **attrs)
    torch.cuda.synchronize()
    if not torch.isfinite(out).all():
        raise SystemExit(f"non-finite output: {what}")


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
            _run_case(lib, f"D={head_dim} Sq={q_len} Skv={kv_len} causal={causal} {dtype}", batch=1, q_heads=4,
                      kv_heads=2, q_len=q_len, kv_len=kv_len, head_dim=head_dim, dtype=dtype, is_causal=causal,
                      causal_alignment=alignment, qk_granularity=granularity)
            cases += 1
    # Two CTAs walk every tile (Q reuse, the stage sequence across tiles, causal stage releases).
    os.environ["SAGE_SM90_GRID_LIMIT"] = "2"
    for head_dim, causal in ((128, 1), (64, 0), (128, 0)):
        _run_case(lib, f"SAGE_SM90_GRID_LIMIT=2, D={head_dim} causal={causal}", batch=2, q_heads=2, kv_heads=1,
                  q_len=300, kv_len=420, head_dim=head_dim, dtype=torch.float16, is_causal=causal,
                  causal_alignment="bottom_right")
        cases += 1
    del os.environ["SAGE_SM90_GRID_LIMIT"]
    # A cluster of 15 CTAs (non-portable size): kv_len 1900.
    for head_dim in (128, 64):
        _run_case(lib, f"kv_len 1900, D={head_dim}", batch=1, q_heads=2, kv_heads=1, q_len=130, kv_len=1900,
                  head_dim=head_dim, dtype=torch.float16)
        cases += 1
    # The calls above with kv_len <= 2048 quantized K and V in clusters; two more with the two passes.
    os.environ["SAGE_SM90_KV_CLUSTER"] = "0"
    for head_dim in (128, 64):
        _run_case(lib, f"SAGE_SM90_KV_CLUSTER=0, D={head_dim}", batch=1, q_heads=4, kv_heads=2, q_len=150,
                  kv_len=170, head_dim=head_dim, dtype=torch.bfloat16)
        cases += 1
    del os.environ["SAGE_SM90_KV_CLUSTER"]
    print(f"{cases} sm90 calls ran")


if __name__ == "__main__":
    main()
