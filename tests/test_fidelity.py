"""Accuracy of the op (C++ CPU kernel through ORT) against exact float attention, on Gaussian inputs and on
inputs with the outlier structure of real models (docs/OP_CONTRACT.md, "Accuracy to expect")."""
from __future__ import annotations

import pytest

from op_runner import run_sage
from sage_export.metrics import fidelity
from sage_export.reference import float_attention
from sage_export.testing import make_qkv

SHAPE = dict(batch=1, q_heads=4, kv_heads=4, q_len=1024, kv_len=1024, head_dim=128)


@pytest.mark.parametrize(
    "attrs,min_cos",
    [
        ({}, 0.999),  # defaults: int8 per_thread, smooth_k, FP8 P~.V with two-level FP32 accumulation
        ({"pv_dtype": "fp16"}, 0.9999),
        ({"pv_dtype": "fp16", "pv_accum": "fp16"}, 0.9999),
        ({"pv_accum": "fp16"}, 0.999),  # SageAttention2++
        ({"qk_granularity": "per_block"}, 0.999),
        ({"is_causal": 1}, 0.999),
    ],
)
def test_gaussian_fidelity(ort_library, rng, attrs, min_cos):
    q, k, v = make_qkv(rng, **SHAPE)
    fid = fidelity(run_sage(q, k, v, **attrs), float_attention(q, k, v, is_causal=attrs.get("is_causal", 0)))
    print(f"{attrs or 'defaults'}: {fid}")
    assert fid.cos >= min_cos, f"{attrs}: {fid}"


def test_smooth_k_helps_with_outlier_channels(ort_library, rng):
    q, k, v = make_qkv(rng, **SHAPE, outliers=True)
    exact = float_attention(q, k, v)
    with_smoothing = fidelity(run_sage(q, k, v, smooth_k=1, pv_dtype="fp16"), exact)
    without = fidelity(run_sage(q, k, v, smooth_k=0, pv_dtype="fp16"), exact)
    print(f"outliers, int8: smooth_k=1 {with_smoothing}; smooth_k=0 {without}")
    assert with_smoothing.cos >= 0.9995
    assert with_smoothing.rel_l1 < 0.7 * without.rel_l1, f"smooth_k=1 {with_smoothing} vs smooth_k=0 {without}"


def test_smooth_q_helps_int4_with_outlier_channels(ort_library, rng):
    q, k, v = make_qkv(rng, **SHAPE, outliers=True)
    exact = float_attention(q, k, v)
    both = fidelity(run_sage(q, k, v, qk_quant="int4", smooth_q=1, pv_dtype="fp16"), exact)
    k_only = fidelity(run_sage(q, k, v, qk_quant="int4", smooth_q=0, pv_dtype="fp16"), exact)
    print(f"outliers, int4: smooth_q+k {both}; smooth_k only {k_only}")
    assert both.rel_l1 < k_only.rel_l1, f"smooth_q=1 {both} vs smooth_q=0 {k_only}"
