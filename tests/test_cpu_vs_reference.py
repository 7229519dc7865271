"""The C++ CPU op (through ONNX Runtime) against the independent NumPy implementation of the contract.

Both compute docs/OP_CONTRACT.md in float32; they may differ only by float summation order (k̄, q̄, the
P~.V sums), which can flip an occasional rounding of a code or an E4M3 value. Bound: relative L1 <= 1e-3
after both outputs are rounded to the op's type T (in practice it is ~1e-6).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from op_runner import rounded_inputs, run_sage
from sage_export.metrics import fidelity
from sage_export.numerics import round_to_dtype
from sage_export.reference import sage_attention_reference
from sage_export.testing import make_qkv

REL_L1_BOUND = 1e-3

QUANT_COMBOS = list(
    itertools.product(
        ["int8", "int4"],
        ["per_thread", "per_warp", "per_block"],
        [0, 1],  # smooth_k
        [0, 1],  # smooth_q
        ["fp8_e4m3", "fp16"],
        ["fp32", "fp16"],
    )
)


def check_against_reference(q, k, v, dtype: str, **attrs) -> None:
    q, k, v = rounded_inputs((q, k, v), dtype)
    out = run_sage(q, k, v, dtype=dtype, **attrs)
    ref = round_to_dtype(sage_attention_reference(q, k, v, **attrs), dtype)
    assert out.shape == ref.shape
    assert np.isfinite(out).all(), "the op left NaN/Inf in the output (poisoned buffer not overwritten?)"
    fid = fidelity(out, ref)
    assert fid.rel_l1 <= REL_L1_BOUND, f"C++ vs NumPy {fid} for dtype={dtype} attrs={attrs}"


@pytest.mark.parametrize("qk_quant,granularity,smooth_k,smooth_q,pv_dtype,pv_accum", QUANT_COMBOS)
def test_every_attribute_combination(rng, qk_quant, granularity, smooth_k, smooth_q, pv_dtype, pv_accum):
    # GQA 4:2, lengths that are not multiples of any tile, head_dim 80, outlier channels.
    q, k, v = make_qkv(rng, batch=1, q_heads=4, kv_heads=2, q_len=150, kv_len=150, head_dim=80, outliers=True)
    check_against_reference(
        q, k, v, "float32",
        qk_quant=qk_quant, qk_granularity=granularity, smooth_k=smooth_k, smooth_q=smooth_q,
        pv_dtype=pv_dtype, pv_accum=pv_accum, is_causal=1,
    )  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("layout", ["BNSH", "BSNH", "BSH"])
@pytest.mark.parametrize("head_dim", [32, 64, 80, 128])
def test_dtypes_layouts_head_dims(rng, dtype, layout, head_dim):
    q, k, v = make_qkv(rng, batch=2, q_heads=4, kv_heads=1, q_len=70, kv_len=200, head_dim=head_dim, layout=layout)
    attrs = {"q_num_heads": 4, "kv_num_heads": 1} if layout == "BSH" else {"layout": layout}
    check_against_reference(q, k, v, dtype, **attrs)


@pytest.mark.parametrize(
    "q_len,kv_len,causal",
    [(1, 1, 0), (1, 300, 0), (300, 1, 0), (129, 129, 1), (256, 256, 1), (65, 500, 0), (500, 65, 0)],
)
def test_sequence_lengths_and_causal(rng, q_len, kv_len, causal):
    q, k, v = make_qkv(rng, batch=1, q_heads=2, kv_heads=2, q_len=q_len, kv_len=kv_len, head_dim=64)
    check_against_reference(q, k, v, "float16", is_causal=causal)


@pytest.mark.parametrize("pv_dtype", ["fp8_e4m3", "fp16"])
def test_explicit_scale(rng, pv_dtype):
    q, k, v = make_qkv(rng, batch=1, q_heads=2, kv_heads=2, q_len=100, kv_len=100, head_dim=64)
    check_against_reference(q, k, v, "float32", scale=0.3, pv_dtype=pv_dtype)
