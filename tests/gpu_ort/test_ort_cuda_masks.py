"""attn_mask, key_lengths and causal alignment through ONNX Runtime's CUDA execution provider, against the CPU op
(same node, CPU EP) and float attention with the same mask. The optional inputs are bound as host arrays: ORT
copies them to the device, and the kernels read them there. Needs onnxruntime-gpu and a GPU."""
from __future__ import annotations


import numpy as np
import pytest

from op_runner import rounded_inputs, run_sage
from sage_export.metrics import fidelity
from sage_export.numerics import round_to_dtype
from sage_export.reference import float_attention
from sage_export.testing import gpu_effective_attrs, make_qkv

pytestmark = pytest.mark.gpu
CUDA = ("CUDAExecutionProvider", "CPUExecutionProvider")
B, HQ, HKV, D = 3, 4, 2, 64


def mask_forms(rng, sq, skv):
    """(name, attn_mask, key_lengths, mask_dtype): the forms of tests/test_masks.py plus fp16/bf16 additive masks."""
    lengths = rng.integers(1, skv + 1, size=B)
    lengths[0] = skv
    pad = np.arange(skv)[None, :] < lengths[:, None]
    holes = pad & (rng.random((B, skv)) > 0.2)
    holes[:, 0] = True
    general = rng.random((B, 1, sq, skv)) > 0.3
    additive = np.where(rng.random((B, HQ, sq, skv)) > 0.2, rng.standard_normal((B, HQ, sq, skv)), -np.inf)
    bert = np.where(pad, 0.0, -10000.0).astype(np.float32)[:, None, None, :]
    bf16 = round_to_dtype(rng.standard_normal((1, 1, sq, skv)).astype(np.float32), "bfloat16")
    return [
        ("bool_key_padding_2d", pad, None, None),
        ("bool_key_padding_4d", pad[:, None, None, :], None, None),
        ("bool_key_padding_with_holes", holes, None, None),
        ("bool_general_b1sk", general, None, None),
        ("additive_bhsk_with_neg_inf", additive.astype(np.float32), None, None),
        ("additive_bert_extended", bert, None, None),
        ("additive_fp16", additive.astype(np.float16), None, None),
        ("additive_bf16", bf16, None, "bfloat16"),
        ("key_lengths_int32", None, lengths.astype(np.int32), None),
        ("key_lengths_int64_and_general_mask", general, lengths.astype(np.int64), None),
        ("key_lengths_and_holes", holes, lengths.astype(np.int64), None),
    ]


def gpu_vs_cpu(q, k, v, kernel, dtype="float16", attn_mask=None, key_lengths=None, mask_dtype=None, **attrs):
    import torch

    major, minor = torch.cuda.get_device_capability()
    if kernel == "sm90" and major * 10 + minor != 90:
        print(f"skipping: kernel 'sm90' needs an sm_90 GPU; this one is sm_{major}{minor}")
        pytest.skip(f"kernel 'sm90' needs an sm_90 GPU; this one is sm_{major}{minor}")
    # What the chosen path really computes (contract GPU fallbacks), for the CPU op to compute the same.
    cpu_attrs = gpu_effective_attrs({**attrs, "kernel": kernel}, major * 10 + minor)
    cpu_attrs.pop("kernel")
    opt = {"attn_mask": attn_mask, "key_lengths": key_lengths, "mask_dtype": mask_dtype}
    gpu = run_sage(q, k, v, dtype=dtype, providers=CUDA, kernel=kernel, **opt, **attrs)
    cpu = run_sage(q, k, v, dtype=dtype, **opt, **cpu_attrs)
    assert np.isfinite(gpu).all()
    fid = fidelity(gpu, cpu)
    assert fid.cos >= 0.9999, f"kernel={kernel} {attrs}: GPU vs CPU op {fid}"
    causal = {a: attrs[a] for a in ("is_causal", "causal_alignment") if a in attrs}
    exact = float_attention(q, k, v, attn_mask=attn_mask, key_lengths=key_lengths, **causal)
    assert fidelity(gpu, exact).cos >= 0.999, f"vs float attention {fidelity(gpu, exact)}"
    return gpu


@pytest.mark.parametrize("form", range(11))
@pytest.mark.parametrize("kernel", ["auto", "sm80", "sm89", "sm90"])
def test_mask_forms_match_cpu_op(cuda_library, rng, kernel, form):
    q, k, v = rounded_inputs(
        make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=96, kv_len=150, head_dim=D, outliers=True), "float16"
    )
    _, attn_mask, lengths, mask_dtype = mask_forms(rng, 96, 150)[form]
    gpu_vs_cpu(q, k, v, kernel, attn_mask=attn_mask, key_lengths=lengths, mask_dtype=mask_dtype)


@pytest.mark.parametrize("alignment", ["top_left", "bottom_right"])
@pytest.mark.parametrize("sq,skv", [(200, 200), (1, 300), (70, 300), (300, 70)])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_causal_alignment_matches_cpu_op(cuda_library, rng, dtype, alignment, sq, skv):
    q, k, v = rounded_inputs(make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=sq, kv_len=skv, head_dim=D), dtype)
    out = gpu_vs_cpu(q, k, v, "auto", dtype=dtype, is_causal=1, causal_alignment=alignment)
    if alignment == "bottom_right" and sq > skv:
        np.testing.assert_array_equal(out[:, :, : sq - skv], 0.0)


def test_kv_cache_decode_with_key_lengths(cuda_library, rng):
    q, k, v = rounded_inputs(make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=4, kv_len=512, head_dim=128),
                             "float16")
    lengths = np.array([512, 200, 0], dtype=np.int64)
    out = gpu_vs_cpu(q, k, v, "auto", key_lengths=lengths, is_causal=1, causal_alignment="bottom_right")
    np.testing.assert_array_equal(out[2], 0.0)


def test_fully_masked_rows_and_padding_values(cuda_library, rng):
    q, k, v = rounded_inputs(make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=40, kv_len=128, head_dim=D),
                             "float16")
    mask = rng.random((B, HQ, 40, 128)) > 0.5
    mask[:, :, 5] = False
    out = run_sage(q, k, v, dtype="float16", providers=CUDA, attn_mask=mask)
    np.testing.assert_array_equal(out[:, :, 5], 0.0)
    assert np.isfinite(out).all()
    lengths = np.array([128, 70, 9], dtype=np.int64)
    base = run_sage(q, k, v, dtype="float16", providers=CUDA, key_lengths=lengths)
    k2, v2 = k.copy(), v.copy()
    for b, n in enumerate(lengths):
        k2[b, :, n:] = 1e4
        v2[b, :, n:] = -3e4
    np.testing.assert_array_equal(run_sage(q, k2, v2, dtype="float16", providers=CUDA, key_lengths=lengths), base)
    pad = np.arange(128)[None, :] < lengths[:, None]
    by_mask = run_sage(q, k2, v2, dtype="float16", providers=CUDA, attn_mask=pad)
    assert fidelity(by_mask, base).cos >= 0.99999
