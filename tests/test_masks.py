"""attn_mask, key_lengths and causal alignment (docs/OP_CONTRACT.md, "Masks") on the CPU op: against the
NumPy reference (same numerics) and against float attention with the same mask; fully masked rows give 0."""
from __future__ import annotations

import numpy as np
import pytest

from op_runner import rounded_inputs, run_sage
from sage_export.metrics import fidelity
from sage_export.numerics import round_to_dtype
from sage_export.reference import float_attention, sage_attention_reference
from sage_export.testing import make_qkv

B, HQ, HKV, D = 3, 4, 2, 64


def key_padding(rng, sq, skv):
    lengths = rng.integers(1, skv + 1, size=B)
    lengths[0] = skv
    return np.arange(skv)[None, :] < lengths[:, None], lengths


def mask_forms(rng, sq, skv):
    """(name, attn_mask, key_lengths) for every supported form."""
    pad, lengths = key_padding(rng, sq, skv)
    holes = pad & (rng.random((B, skv)) > 0.2)
    holes[:, 0] = True
    general = rng.random((B, 1, sq, skv)) > 0.3
    additive = np.where(rng.random((B, HQ, sq, skv)) > 0.2, rng.standard_normal((B, HQ, sq, skv)), -np.inf).astype(np.float32)
    bert = np.where(pad, 0.0, -10000.0).astype(np.float32)[:, None, None, :]
    return [
        ("bool_key_padding_2d", pad, None),
        ("bool_key_padding_4d", pad[:, None, None, :], None),
        ("bool_key_padding_with_holes", holes, None),
        ("bool_general_b1sk", general, None),
        ("additive_bhsk_with_neg_inf", additive, None),
        ("additive_bert_extended", bert, None),
        ("key_lengths_int32", None, lengths.astype(np.int32)),
        ("key_lengths_int64_and_general_mask", general, lengths.astype(np.int64)),
    ]


def compare(q, k, v, dtype, attn_mask=None, key_lengths=None, mask_dtype=None, **attrs):
    q, k, v = rounded_inputs((q, k, v), dtype)
    out = run_sage(q, k, v, dtype=dtype, attn_mask=attn_mask, key_lengths=key_lengths, mask_dtype=mask_dtype, **attrs)
    ref = round_to_dtype(sage_attention_reference(q, k, v, attn_mask=attn_mask, key_lengths=key_lengths, **attrs), dtype)
    assert np.isfinite(out).all()
    fid = fidelity(out, ref)
    assert fid.rel_l1 <= 1e-3, f"C++ vs NumPy {fid}"
    exact = float_attention(q, k, v, attn_mask=attn_mask, key_lengths=key_lengths,
                            **{a: attrs[a] for a in ("is_causal", "causal_alignment") if a in attrs})  # fmt: skip
    assert fidelity(out, exact).cos >= 0.999, f"vs float attention {fidelity(out, exact)}"
    return out, exact


@pytest.mark.parametrize("form", range(8))
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_mask_forms(ort_library, rng, form, dtype):
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=96, kv_len=150, head_dim=D, outliers=True)
    name, attn_mask, lengths = mask_forms(rng, 96, 150)[form]
    compare(q, k, v, dtype, attn_mask=attn_mask, key_lengths=lengths)


@pytest.mark.parametrize("alignment", ["top_left", "bottom_right"])
@pytest.mark.parametrize("sq,skv", [(200, 200), (1, 300), (70, 300), (300, 70)])
def test_causal_alignment(ort_library, rng, alignment, sq, skv):
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=sq, kv_len=skv, head_dim=D)
    out, exact = compare(q, k, v, "float32", is_causal=1, causal_alignment=alignment)
    if alignment == "bottom_right" and sq > skv:
        np.testing.assert_array_equal(out[:, :, : sq - skv], 0.0)  # rows before the diagonal see no key


def test_causal_bottom_right_with_key_lengths(ort_library, rng):
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=16, kv_len=256, head_dim=D)
    lengths = np.array([256, 100, 17], dtype=np.int64)
    compare(q, k, v, "float16", key_lengths=lengths, is_causal=1, causal_alignment="bottom_right")


def test_fully_masked_rows_give_zero(ort_library, rng):
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=40, kv_len=80, head_dim=D)
    mask = rng.random((B, HQ, 40, 80)) > 0.5
    mask[:, :, 5] = False
    out = run_sage(q, k, v, attn_mask=mask)
    np.testing.assert_array_equal(out[:, :, 5], 0.0)
    lengths = np.array([80, 0, 3], dtype=np.int32)
    out = run_sage(q, k, v, key_lengths=lengths)
    np.testing.assert_array_equal(out[1], 0.0)
    assert np.abs(out[2]).sum() > 0


def test_padding_values_do_not_matter(ort_library, rng):
    # Keys beyond key_lengths (and their V) may hold anything: they must not change the result.
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=64, kv_len=128, head_dim=D)
    lengths = np.array([128, 70, 9], dtype=np.int64)
    base = run_sage(q, k, v, key_lengths=lengths)
    k2, v2 = k.copy(), v.copy()
    for b, n in enumerate(lengths):
        k2[b, :, n:] = 1e4
        v2[b, :, n:] = -3e4
    np.testing.assert_array_equal(run_sage(q, k2, v2, key_lengths=lengths), base)
    np.testing.assert_array_equal(run_sage(q, k2, v2, attn_mask=np.arange(128)[None, :] < lengths[:, None]), base)


def test_bf16_additive_mask_on_fp16_model(ort_library, rng):
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=32, kv_len=64, head_dim=D)
    bias = round_to_dtype(rng.standard_normal((1, 1, 32, 64)).astype(np.float32), "bfloat16")
    compare(q, k, v, "float16", attn_mask=bias, mask_dtype="bfloat16")


@pytest.mark.parametrize(
    "mask_shape,fragment",
    [((B, 150), "(batch, key length)"), ((B, HQ, 96, 149), "dimension 3"), ((B, 3, 96, 150), "dimension 1"), ((96, 150, 1), "expected")],
)
def test_bad_mask_shapes(ort_library, rng, mask_shape, fragment):
    kv_len = 151 if mask_shape == (B, 150) else 150  # the 2-D case: a mask one key short
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=96, kv_len=kv_len, head_dim=D)
    with pytest.raises(Exception, match="attn_mask") as info:
        run_sage(q, k, v, attn_mask=np.ones(mask_shape, dtype=bool))
    assert fragment in str(info.value)


def test_bad_optional_types(ort_library, rng):
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=16, kv_len=16, head_dim=D)
    with pytest.raises(Exception, match="key_lengths.*int32, int64"):
        run_sage(q, k, v, key_lengths=np.ones(B, dtype=np.float32))
    with pytest.raises(Exception, match="key_lengths.*shape"):
        run_sage(q, k, v, key_lengths=np.ones((B, 1), dtype=np.int64))
    with pytest.raises(Exception, match="attn_mask.*bool, float32"):
        run_sage(q, k, v, attn_mask=np.ones((B, 16), dtype=np.int32))
