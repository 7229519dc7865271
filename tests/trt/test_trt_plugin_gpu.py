"""The TensorRT plugin on a GPU, without TensorRT: the driver takes one plugin through TensorRT's whole life
cycle (parser fields, build queries, configurePlugin, workspace, serialize, deserialize, attach, enqueue on
a non-default stream, twice) and writes the output; it must match the NumPy reference of the contract
(cos >= 0.9999) and be close to exact float attention. The mask cases add attn_mask and/or key_lengths as
inputs 3 and 4 (the plugin tells them apart by type). Skips, saying why, without a GPU or the build."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from onnx_attributes import driver_args
from sage_export.metrics import fidelity
from sage_export.numerics import round_to_dtype
from sage_export.onnx_node import make_sage_node
from sage_export.reference import float_attention, sage_attention_reference
from sage_export.testing import gpu_effective_attrs
from sage_export.testing import make_qkv

pytestmark = pytest.mark.gpu

# (dtype, layout, (batch, q_heads, kv_heads, q_len, kv_len, head_dim), attributes)
CASES = [
    ("float16", "BNSH", (2, 8, 8, 256, 256, 128), {}),  # the contract's defaults: FP8 P~.V, per_thread, smooth_k
    ("bfloat16", "BSNH", (1, 8, 2, 384, 384, 64), {"is_causal": 1}),  # GQA, causal
    ("float16", "BSH", (2, 4, 2, 200, 333, 64), {"pv_dtype": "fp16"}),  # 3-D packed heads, ragged lengths
    ("float32", "BNSH", (1, 2, 2, 130, 70, 128), {"qk_granularity": "per_block", "smooth_q": 1}),
    ("float16", "BNSH", (1, 4, 1, 256, 256, 128), {"pv_accum": "fp16"}),  # SageAttention2++, MQA
    ("float16", "BNSH", (1, 2, 2, 200, 131, 80), {"pv_dtype": "fp16"}),  # head_dim padded inside the kernel
    ("float16", "BNSH", (1, 2, 2, 1, 77, 64), {"kernel": "sm80", "pv_dtype": "fp16"}),  # decode-like Sq = 1
    ("float16", "BSNH", (1, 4, 4, 128, 512, 128), {"kernel": "sm89", "qk_granularity": "per_warp", "smooth_k": 0}),
    # int4 Q.K^T runs as int8 on the sm90 path (docs/OP_CONTRACT.md), so it is pinned to the portable kernel.
    ("float16", "BNSH", (1, 2, 2, 256, 256, 128), {"kernel": "sm89", "qk_quant": "int4", "smooth_q": 1}),
]


def to_bytes(x: np.ndarray, dtype: str) -> bytes:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if dtype == "float32":
        return x.tobytes()
    if dtype == "float16":
        return x.astype(np.float16).tobytes()
    return (x.view(np.uint32) >> 16).astype(np.uint16).tobytes()  # values are already bf16-exact


def from_bytes(raw: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "float32":
        return np.frombuffer(raw, np.float32).reshape(shape)
    if dtype == "float16":
        return np.frombuffer(raw, np.float16).astype(np.float32).reshape(shape)
    return (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)


def run_plugin(run_driver, tmp_path: Path, dtype: str, q, k, v, attrs: dict, extras=()) -> np.ndarray:
    """Runs the driver's GPU life cycle on q, k, v and the optional inputs `extras` ((name, array) in input
    order: 'attn_mask' bool or float in `dtype`, 'key_lengths' int32/int64); returns the output as float32.
    Skips without a GPU."""
    for name, x in (("query", q), ("key", k), ("value", v)):
        (tmp_path / f"{name}.bin").write_bytes(to_bytes(x, dtype))
    extra_args = []
    for name, x in extras:
        x = np.asarray(x)
        if x.dtype == np.bool_ or x.dtype.kind == "i":
            kind = {np.dtype(np.bool_): "bool", np.dtype(np.int32): "int32", np.dtype(np.int64): "int64"}[x.dtype]
            raw = np.ascontiguousarray(x).tobytes()
        else:  # an additive mask has the query's type
            kind, raw = dtype, to_bytes(x, dtype)
        (tmp_path / f"{name}.bin").write_bytes(raw)
        extra_args += ["--attn-mask" if name == "attn_mask" else "--key-lengths", f"{kind}:{','.join(map(str, x.shape))}"]

    inputs = ["query", "key", "value", *(name for name, _ in extras)]
    node = make_sage_node(inputs, ["output"], name="sage_gpu_node", **attrs)
    result = run_driver(
        "run", "--dtype", dtype, "--dir", str(tmp_path),
        "--query", ",".join(map(str, q.shape)), "--key", ",".join(map(str, k.shape)),
        "--value", ",".join(map(str, v.shape)), *extra_args, *driver_args(node),
    )  # fmt: skip
    print(result.stdout)
    if result.returncode == 77:
        pytest.skip(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, result.stdout
    out = from_bytes((tmp_path / "output.bin").read_bytes(), dtype, q.shape)
    assert np.isfinite(out).all(), "output has NaN/inf (the driver poisons the output buffer with NaN)"
    return out


def device_arch() -> int:
    torch = pytest.importorskip("torch", reason="torch tells the device's compute capability")
    major, minor = torch.cuda.get_device_capability()
    return major * 10 + minor


@pytest.mark.parametrize("dtype,layout,dims,attrs", CASES, ids=lambda c: str(c).replace(" ", ""))
def test_enqueue_matches_reference(run_driver, rng, tmp_path: Path, dtype, layout, dims, attrs):
    batch, hq, hkv, sq, skv, d = dims
    q, k, v = make_qkv(rng, batch=batch, q_heads=hq, kv_heads=hkv, q_len=sq, kv_len=skv, head_dim=d, layout=layout)
    q, k, v = (round_to_dtype(x, dtype) for x in (q, k, v))
    shape_attrs = {"q_num_heads": hq, "kv_num_heads": hkv} if layout == "BSH" else {"layout": layout}
    all_attrs = {**shape_attrs, **attrs}
    out = run_plugin(run_driver, tmp_path, dtype, q, k, v, all_attrs)

    # What the chosen GPU path computes (contract fallbacks: e.g. auto on Hopper with smooth_q runs the
    # portable path, whose FP16 P~.V stands in for FP8).
    ref_attrs = gpu_effective_attrs(all_attrs, device_arch())
    expected = round_to_dtype(sage_attention_reference(q, k, v, **ref_attrs), dtype)
    fid = fidelity(out, expected)
    assert fid.cos >= 0.9999, f"{dtype} {layout} {dims} {attrs}: plugin vs NumPy reference {fid}"
    exact = float_attention(q, k, v, **shape_attrs, is_causal=attrs.get("is_causal", 0))
    floor = 0.95 if attrs.get("qk_quant") == "int4" else 0.998  # int4 Q.K^T costs ~0.02 of cos by design
    assert fidelity(out, exact).cos >= floor, f"plugin vs float attention {fidelity(out, exact)}"


# Optional inputs. (id, dtype, layout, (batch, q_heads, kv_heads, q_len, kv_len, head_dim), attributes, extras)
# where extras(rng, batch, q_heads, q_len, kv_len) gives the (name, array) inputs after value, in order.
def _lengths(rng, b, skv, dtype, zero=False):
    n = rng.integers(1, skv + 1, size=b)
    n[0] = skv  # one full row of keys
    if zero:
        n[-1] = 0  # no valid key at all: that batch outputs 0
    return n.astype(dtype)


def _padding(rng, b, skv):
    return np.arange(skv)[None, :] < _lengths(rng, b, skv, np.int64)[:, None]


def _additive(rng, shape):
    return np.where(rng.random(shape) > 0.2, rng.standard_normal(shape), -np.inf).astype(np.float32)


MASK_CASES = [
    ("bool_key_padding_2d", "float16", "BNSH", (2, 4, 2, 96, 150, 64), {},
     lambda rng, b, h, sq, skv: [("attn_mask", _padding(rng, b, skv))]),
    ("bool_key_padding_4d_bsnh", "float16", "BSNH", (2, 4, 2, 96, 150, 128), {},
     lambda rng, b, h, sq, skv: [("attn_mask", _padding(rng, b, skv)[:, None, None, :])]),
    ("additive_4d_with_neg_inf", "float16", "BNSH", (2, 4, 2, 64, 130, 64), {},
     lambda rng, b, h, sq, skv: [("attn_mask", _additive(rng, (b, h, sq, skv)))]),
    ("additive_bf16_broadcast_11sk", "bfloat16", "BNSH", (2, 4, 4, 80, 80, 64), {"pv_dtype": "fp16"},
     lambda rng, b, h, sq, skv: [("attn_mask", rng.standard_normal((1, 1, sq, skv)).astype(np.float32))]),
    ("key_lengths_int32_with_empty_batch", "float16", "BNSH", (3, 4, 2, 64, 200, 64), {},
     lambda rng, b, h, sq, skv: [("key_lengths", _lengths(rng, b, skv, np.int32, zero=True))]),
    ("key_lengths_int64", "float32", "BSNH", (3, 2, 2, 48, 257, 128), {},
     lambda rng, b, h, sq, skv: [("key_lengths", _lengths(rng, b, skv, np.int64))]),
    ("key_lengths_then_bool_general_mask", "float16", "BNSH", (2, 4, 2, 64, 150, 64), {},
     lambda rng, b, h, sq, skv: [("key_lengths", _lengths(rng, b, skv, np.int64)),
                                 ("attn_mask", rng.random((b, 1, sq, skv)) > 0.3)]),
    ("bool_padding_and_key_lengths_int32", "float16", "BNSH", (2, 4, 2, 64, 150, 64), {"kernel": "sm89"},
     lambda rng, b, h, sq, skv: [("attn_mask", _padding(rng, b, skv) | (np.arange(skv) < 3)),
                                 ("key_lengths", _lengths(rng, b, skv, np.int32))]),
    # is_causal with Sq != Skv, both alignments (bottom_right with Sq > Skv leaves the first rows without keys).
    ("causal_top_left_sq_lt_skv", "float16", "BNSH", (2, 4, 2, 70, 300, 64),
     {"is_causal": 1, "causal_alignment": "top_left"}, lambda rng, b, h, sq, skv: []),
    ("causal_bottom_right_sq_gt_skv", "bfloat16", "BNSH", (2, 4, 2, 300, 70, 64),
     {"is_causal": 1, "causal_alignment": "bottom_right"}, lambda rng, b, h, sq, skv: []),
    ("causal_bottom_right_kv_cache_key_lengths", "float16", "BNSH", (3, 4, 2, 4, 512, 128),
     {"is_causal": 1, "causal_alignment": "bottom_right"},
     lambda rng, b, h, sq, skv: [("key_lengths", np.array([512, 200, 0], dtype=np.int64))]),
    ("causal_top_left_with_padding_sq_gt_skv", "float16", "BSNH", (2, 4, 2, 200, 131, 64),
     {"is_causal": 1, "causal_alignment": "top_left"},
     lambda rng, b, h, sq, skv: [("attn_mask", _padding(rng, b, skv))]),
]


@pytest.mark.parametrize("case", MASK_CASES, ids=lambda c: c[0])
def test_enqueue_with_masks_matches_reference(run_driver, rng, tmp_path: Path, case):
    _, dtype, layout, dims, attrs, make_extras = case
    batch, hq, hkv, sq, skv, d = dims
    q, k, v = make_qkv(rng, batch=batch, q_heads=hq, kv_heads=hkv, q_len=sq, kv_len=skv, head_dim=d, layout=layout)
    q, k, v = (round_to_dtype(x, dtype) for x in (q, k, v))
    extras = make_extras(rng, batch, hq, sq, skv)
    # An additive mask has the query's type: the reference sees the values the plugin reads.
    extras = [(n, round_to_dtype(x, dtype) if n == "attn_mask" and x.dtype.kind == "f" else x) for n, x in extras]
    all_attrs = {"layout": layout, **attrs}
    out = run_plugin(run_driver, tmp_path, dtype, q, k, v, all_attrs, extras)

    masks = dict(extras)
    ref_attrs = gpu_effective_attrs(all_attrs, device_arch())
    expected = round_to_dtype(sage_attention_reference(q, k, v, **ref_attrs, **masks), dtype)
    fid = fidelity(out, expected)
    assert fid.cos >= 0.9999, f"{case[0]}: plugin vs NumPy reference {fid}"
    causal = {a: attrs[a] for a in ("is_causal", "causal_alignment") if a in attrs}
    exact = float_attention(q, k, v, layout=layout, **causal, **masks)
    assert fidelity(out, exact).cos >= 0.998, f"{case[0]}: plugin vs float attention {fidelity(out, exact)}"
    # Rows without a visible key are exactly 0 (not NaN), as the contract says.
    empty_rows = (np.asarray(exact) == 0.0).all(axis=-1)
    np.testing.assert_array_equal(out[empty_rows], 0.0)
    if "key_lengths" in masks and (masks["key_lengths"] == 0).any():
        assert (out[masks["key_lengths"] == 0] == 0).all(), "a batch with key_lengths 0 must output 0"
    if attrs.get("causal_alignment") == "bottom_right" and sq > skv:
        rows = out[:, : sq - skv] if layout == "BSNH" else out[:, :, : sq - skv]
        np.testing.assert_array_equal(rows, 0.0)


def test_fully_masked_row_outputs_zero(run_driver, rng, tmp_path: Path):
    """A bool 4-D mask whose row 5 allows no key: that row is 0 in every (batch, head), the rest matches."""
    dtype, batch, hq, hkv, sq, skv, d = "float16", 2, 4, 2, 40, 128, 64
    q, k, v = (round_to_dtype(x, dtype) for x in make_qkv(rng, batch=batch, q_heads=hq, kv_heads=hkv, q_len=sq,
                                                          kv_len=skv, head_dim=d))
    mask = rng.random((batch, hq, sq, skv)) > 0.5
    mask[:, :, 5] = False
    out = run_plugin(run_driver, tmp_path, dtype, q, k, v, {}, [("attn_mask", mask)])
    np.testing.assert_array_equal(out[:, :, 5], 0.0)
    ref_attrs = gpu_effective_attrs({}, device_arch())
    expected = round_to_dtype(sage_attention_reference(q, k, v, **ref_attrs, attn_mask=mask), dtype)
    assert fidelity(out, expected).cos >= 0.9999, fidelity(out, expected)
