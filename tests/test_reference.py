"""The NumPy reference of docs/OP_CONTRACT.md: number formats, groups, a literal row-by-row re-derivation,
fidelity against exact float attention, layouts/GQA/scale/causal, argument checking. NumPy only, fast."""

from __future__ import annotations

import inspect
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from sage_export.metrics import Fidelity, fidelity
from sage_export.numerics import (
    bf16_round,
    e4m3_decode,
    e4m3_encode,
    e4m3_round,
    exp2_f32,
    fp16_round,
    round_half_away_from_zero,
    round_to_dtype,
)
from sage_export.quant import k_group_index, q_group_index, quantize_symmetric
from sage_export.reference import float_attention, sage_attention_reference
from sage_export.testing import make_qkv

F32 = np.float32
TOML = Path(__file__).resolve().parents[1] / "sage_export" / "schema" / "sage_attention.toml"


# ----------------------------------------------------------------------------------------------- E4M3


def test_e4m3_every_code_round_trips() -> None:
    codes = np.arange(256, dtype=np.uint8)
    values = e4m3_decode(codes)
    assert np.array_equal(e4m3_encode(values), codes)
    finite = ~np.isnan(values)
    assert np.flatnonzero(~finite).tolist() == [0x7F, 0xFF]
    assert np.array_equal(e4m3_round(values[finite]), values[finite])
    assert values[0x7E] == 448 and values[0x01] == 2.0**-9 and values[0x08] == 2.0**-6 and values[0x38] == 1.0


def test_e4m3_midpoints_round_to_even_code() -> None:
    codes = np.arange(0x00, 0x7E, dtype=np.uint8)  # each positive finite code and its upper neighbour
    lo, hi = e4m3_decode(codes), e4m3_decode(codes + 1)
    mid = ((lo.astype(np.float64) + hi) / 2).astype(F32)  # exact in float32
    even = np.where(codes % 2 == 0, codes, codes + 1).astype(np.uint8)
    for sign in (1, -1):
        got = e4m3_encode(sign * mid)
        assert np.array_equal(got & 0x7F, even)
        assert np.all((got >> 7) == (sign < 0))
        assert np.array_equal(e4m3_round(np.nextafter(sign * mid, 0, dtype=F32)), sign * lo)
        assert np.array_equal(e4m3_round(np.nextafter(sign * mid, sign * np.inf, dtype=F32)), sign * hi)


def test_e4m3_saturation_nan_and_subnormals() -> None:
    big = np.array([448, 449, 463.99, 464, 480, 1e4, 3e38, np.inf], dtype=F32)
    assert np.all(e4m3_round(big) == 448) and np.all(e4m3_round(-big) == -448)
    assert np.isnan(e4m3_round(np.array([np.nan], F32))).all()
    sub = np.array([2**-9, 2**-10, 2**-10 * 1.0001, 3 * 2**-10, 5 * 2**-10, 7 * 2**-9, 15 * 2**-10, 2**-12], F32)
    want = np.array([2**-9, 0, 2**-9, 2 * 2**-9, 2 * 2**-9, 7 * 2**-9, 2**-6, 0], F32)
    assert np.array_equal(e4m3_round(sub), want)
    assert np.array_equal(e4m3_round(-sub), -want)
    assert np.signbit(e4m3_round(np.array([-(2**-12)], F32))).all()  # sign of zero kept


# ----------------------------------------------------------------------------------------------- fp16, bf16, rounding


def test_fp16_ties_to_even() -> None:
    x = np.array([1 + 2**-11, 1 + 3 * 2**-11, 2049, 2051, 65504, 65519, 65520, 2**-25, 3 * 2**-25], F32)
    want = np.array([1, 1 + 2**-9, 2048, 2052, 65504, 65504, np.inf, 0, 2 * 2**-24], F32)
    assert np.array_equal(fp16_round(x), want)
    assert np.array_equal(fp16_round(-x), -want)


def test_bf16_ties_to_even() -> None:
    x = np.array([1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-8 + 2**-20, 257, 259, np.finfo(F32).max, 0.0], F32)
    want = np.array([1, 1 + 2**-6, 1 + 2**-7, 256, 260, np.inf, 0.0], F32)
    assert np.array_equal(bf16_round(x), want)
    assert np.array_equal(bf16_round(-x), -want)
    assert np.isnan(bf16_round(np.array([np.nan], F32))).all()
    assert np.array_equal(round_to_dtype(x[:5], "bfloat16"), want[:5])
    assert np.array_equal(round_to_dtype(x[:2], "float16"), fp16_round(x[:2]))
    with pytest.raises(ValueError, match="dtype"):
        round_to_dtype(x, "float64")


def test_exp2_is_correctly_rounded() -> None:
    x = np.array([-np.inf, -200.0, -3.0, 0.0, 0.5, -0.7213475, 10.0], F32)
    got = exp2_f32(x)
    assert got.dtype == F32
    assert np.array_equal(got, np.exp2(x.astype(np.float64)).astype(F32))
    assert got[0] == 0 and got[2] == 0.125 and got[3] == 1 and got[-1] == 1024


def test_round_half_away_from_zero() -> None:
    x = np.array([0.5, 1.5, 2.5, 0.49999997, 1.4999999, 126.5, 3.0, 0.0, 2**23 + 1], F32)
    want = np.array([1, 2, 3, 0, 1, 127, 3, 0, 2**23 + 1], F32)
    assert np.array_equal(round_half_away_from_zero(x), want)
    assert np.array_equal(round_half_away_from_zero(-x), -want)


# ----------------------------------------------------------------------------------------------- groups


def test_group_index_table() -> None:
    i = [0, 1, 7, 8, 16, 24, 31, 32, 40, 127, 128, 200]
    assert q_group_index(i, "per_thread").tolist() == [0, 1, 7, 0, 0, 0, 7, 8, 8, 31, 32, 48]
    assert q_group_index(i, "per_warp").tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 1, 3, 4, 6]
    assert q_group_index(i, "per_block").tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]
    j = [0, 1, 2, 7, 8, 9, 15, 63, 64, 66, 127, 130]
    assert k_group_index(j, "per_thread").tolist() == [0, 0, 1, 3, 0, 0, 3, 3, 4, 5, 7, 9]
    for g in ("per_warp", "per_block"):
        assert k_group_index(j, g).tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2]
    # per_thread: 4 query tokens per group in a full 32-token slice, 16 keys per group in a 64-key block
    assert np.bincount(q_group_index(np.arange(32), "per_thread")).tolist() == [4] * 8
    assert np.bincount(k_group_index(np.arange(64), "per_thread")).tolist() == [16] * 4
    with pytest.raises(ValueError, match="qk_granularity"):
        q_group_index(0, "per_token")


def test_quantize_symmetric() -> None:
    x = np.array([[1.0, -2.0], [0.5, 0.25], [0.0, 0.0], [0.0, 0.0], [7.0, -3.5]], F32)
    codes, delta = quantize_symmetric(x, np.array([0, 0, 1, 1, 2]), 7)
    assert codes.tolist() == [[4, -7], [2, 1], [0, 0], [0, 0], [7, -4]]  # 1.75 -> 2, 0.875 -> 1, -3.5 -> -4
    assert np.array_equal(delta, np.array([2 / 7, 2 / 7, 0, 0, 1], F32))


# ----------------------------------------------------------------------------------------------- literal re-derivation


def _quant_rows(rows: list[np.ndarray], qmax: int) -> tuple[list[np.ndarray], F32]:
    amax = max(F32(np.max(np.abs(r))) for r in rows)
    if amax == 0:
        return [np.zeros_like(r) for r in rows], F32(0)
    inv = F32(qmax) / amax
    return [np.clip(round_half_away_from_zero(r * inv), -qmax, qmax) for r in rows], amax / F32(qmax)


def _quant_by_group(x: np.ndarray, gid: np.ndarray, qmax: int) -> tuple[np.ndarray, np.ndarray]:
    codes, delta = np.zeros_like(x), np.zeros(len(x), F32)
    for g in np.unique(gid):
        idx = np.flatnonzero(gid == g)
        c, d = _quant_rows([x[t] for t in idx], qmax)
        for t, ct in zip(idx, c):
            codes[t], delta[t] = ct, d
    return codes, delta


def _mean_rows(x: np.ndarray) -> np.ndarray:
    acc = np.zeros(x.shape[-1], F32)
    for row in x:
        acc = acc + row
    return acc / F32(len(x))


def _literal_head(q, k, v, *, sigma, causal, qmax, gran, smooth_k, smooth_q, pv_dtype, pv_accum) -> np.ndarray:
    """One (batch, query head), contract sections 1-7 written per row and per key, BNSH float32 slices."""
    sq, skv, d = q.shape[0], k.shape[0], q.shape[1]
    if smooth_k:
        k = k - _mean_rows(k)
    qbar_c, qbar_d = {}, {}
    if smooth_q:
        q = q.copy()
        for n in range(0, sq, 128):
            qbar = _mean_rows(q[n : n + 128])
            (c,), qbar_d[n // 128] = _quant_rows([qbar], 127)
            qbar_c[n // 128] = c.astype(np.int64)
            q[n : n + 128] = q[n : n + 128] - F32(qbar_d[n // 128]) * c.astype(F32)
    qc, dq = _quant_by_group(q, q_group_index(np.arange(sq), gran), qmax)
    kc, dk = _quant_by_group(k, k_group_index(np.arange(skv), gran), qmax)
    qc, kc = qc.astype(np.int64), kc.astype(np.int64)
    if pv_dtype == "fp16":
        vq, dv, pr, chunk = fp16_round(v), None, F32(1), 16
    else:
        vr, pr, chunk = F32(448 if pv_accum == "fp32" else 2.25), F32(448), 32
        amax = np.array([np.max(np.abs(v[:, c])) for c in range(d)], F32)
        vq = np.stack([e4m3_round(v[:, c] * (vr / amax[c])) if amax[c] else np.zeros(skv, F32) for c in range(d)], 1)
        dv = np.array([amax[c] / vr if amax[c] else 0 for c in range(d)], F32)
    out = np.zeros((sq, d), F32)
    for i in range(sq):
        m, l, o = F32(-np.inf), F32(0), np.zeros(d, F32)
        for k0 in range(0, skv, 64):
            keys = [j for j in range(k0, min(k0 + 64, skv)) if not (causal and j > i)]
            if not keys:
                continue
            t = []
            for j in keys:
                s = (dq[i] * dk[j]) * F32(int(qc[i] @ kc[j]))
                if smooth_q:
                    s = s + (qbar_d[i // 128] * dk[j]) * F32(int(qbar_c[i // 128] @ kc[j]))
                t.append(F32(math.log2(math.e)) * (sigma * s))
            tt = np.array(t, F32)
            m_new = max(m, tt.max())
            alpha = F32(0) if m == -np.inf else exp2_f32(np.array([m - m_new], F32))[0]
            p = exp2_f32(tt - m_new)
            psum = F32(0)
            for pj in p:
                psum = psum + pj
            l = alpha * l + psum
            pq = fp16_round(p) if pv_dtype == "fp16" else e4m3_round(p * pr)
            r = np.zeros(d, F32)
            for c0 in range(k0, k0 + 64, chunk if pv_accum == "fp16" else 64):
                cs = np.zeros(d, F32)
                for pj, j in zip(pq, keys):
                    if c0 <= j < c0 + (chunk if pv_accum == "fp16" else 64):
                        cs = cs + pj * vq[j]
                r = fp16_round(r + cs) if pv_accum == "fp16" else r + cs
            o = alpha * o + r
            m = m_new
        out[i] = o / l if dv is None else (o / l) * dv / pr
    return out


def _literal(q, k, v, *, scale=0.0, is_causal=0, qk_quant="int8", qk_granularity="per_thread", smooth_k=1,
             smooth_q=0, pv_dtype="fp8_e4m3", pv_accum="fp32") -> np.ndarray:  # fmt: skip
    hq, hkv = q.shape[1], k.shape[1]
    sigma = F32(scale) if scale else F32(1 / math.sqrt(q.shape[-1]))
    qmax = {"int8": 127, "int4": 7}[qk_quant]
    out = np.zeros(q.shape, F32)
    for b in range(q.shape[0]):
        for h in range(hq):
            g = h // (hq // hkv)
            out[b, h] = _literal_head(
                q[b, h], k[b, g], v[b, g], sigma=sigma, causal=is_causal, qmax=qmax, gran=qk_granularity,
                smooth_k=smooth_k, smooth_q=smooth_q, pv_dtype=pv_dtype, pv_accum=pv_accum,
            )  # fmt: skip
    return out


LITERAL_CASES = [
    {},
    {"is_causal": 1},
    {"qk_quant": "int4", "qk_granularity": "per_warp", "smooth_q": 1, "is_causal": 1},
    {"qk_granularity": "per_block", "smooth_k": 0, "pv_accum": "fp16"},
    {"pv_dtype": "fp16", "pv_accum": "fp16", "smooth_q": 1, "scale": 0.3},
    {"pv_dtype": "fp16", "qk_quant": "int4", "is_causal": 1},
    {"pv_accum": "fp16", "is_causal": 1, "smooth_q": 1},
]


@pytest.mark.parametrize("attrs", LITERAL_CASES, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()) or "defaults")
def test_vectorized_equals_literal(attrs: dict) -> None:
    """Bit-exact agreement with a row-by-row transcription: GQA 4:2, 2 query blocks, partial KV blocks,
    odd head_dim, an all-zero Q group and an all-zero V channel."""
    rng = np.random.default_rng(7)
    skv = 136 if attrs.get("is_causal") else 80
    q, k, v = make_qkv(rng, batch=1, q_heads=4, kv_heads=2, q_len=136, kv_len=skv, head_dim=13, outliers=True)
    q[0, 0, [0, 8, 16, 24]] = 0  # per_thread Q group 0 of head 0 is all zero
    v[0, 1, :, 5] = 0
    got = sage_attention_reference(q, k, v, **attrs)
    assert np.array_equal(got, _literal(q, k, v, **attrs))


# ----------------------------------------------------------------------------------------------- fidelity vs float


def _data(outliers: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1234 if outliers else 42)
    return make_qkv(rng, batch=1, q_heads=2, kv_heads=2, q_len=1024, kv_len=1024, head_dim=128, outliers=outliers)


@pytest.fixture(scope="module")
def gauss() -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    q, k, v = _data(False)
    return (q, k, v), float_attention(q, k, v)


@pytest.fixture(scope="module")
def outl() -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    q, k, v = _data(True)
    return (q, k, v), float_attention(q, k, v)


def _fid(data: tuple[tuple[np.ndarray, ...], np.ndarray], **attrs) -> Fidelity:
    (q, k, v), ref = data
    return fidelity(sage_attention_reference(q, k, v, **attrs), ref)


@pytest.mark.parametrize(
    "attrs,min_cos",
    [({}, 0.999), ({"pv_dtype": "fp16"}, 0.9999), ({"pv_accum": "fp16"}, 0.999),
     ({"pv_dtype": "fp16", "pv_accum": "fp16"}, 0.9999), ({"qk_granularity": "per_warp"}, 0.999),
     ({"qk_granularity": "per_block"}, 0.999)],
)  # fmt: skip
def test_gaussian_fidelity(gauss, attrs: dict, min_cos: float) -> None:
    fid = _fid(gauss, **attrs)
    assert fid.cos >= min_cos, f"{attrs}: {fid}"


def test_smooth_k_helps_with_k_bias(outl) -> None:
    on, off = _fid(outl), _fid(outl, smooth_k=0)
    msg = f"smooth_k=1: {on}; smooth_k=0: {off}"
    assert on.cos >= 0.999, msg
    assert (1 - off.cos) > 2 * (1 - on.cos) and off.rel_l1 > 1.3 * on.rel_l1, msg


def test_int4_runs_and_is_worse_than_int8(gauss) -> None:
    i8, i4 = _fid(gauss), _fid(gauss, qk_quant="int4")
    msg = f"int8: {i8}; int4: {i4}"
    assert i4.cos > 0.9 and np.isfinite(i4.rel_l1), msg
    assert i4.cos < i8.cos and i4.rel_l1 > i8.rel_l1, msg


def test_smooth_q_helps_int4_with_q_outliers(outl) -> None:
    on, off = _fid(outl, qk_quant="int4", smooth_q=1), _fid(outl, qk_quant="int4")
    msg = f"int4 smooth_q=1: {on}; smooth_q=0: {off}"
    assert (1 - off.cos) > 2 * (1 - on.cos) and off.rel_l1 > 1.3 * on.rel_l1, msg


def test_causal_matches_float_causal(gauss) -> None:
    (q, k, v), _ = gauss
    ref = float_attention(q, k, v, is_causal=1)
    for attrs in ({}, {"pv_dtype": "fp16"}):
        out = sage_attention_reference(q, k, v, is_causal=1, **attrs)
        fid = fidelity(out, ref)
        assert fid.cos >= 0.999, f"{attrs}: {fid}"
        # row 0 sees only key 0
        np.testing.assert_allclose(out[:, :, 0], v[:, :, 0], rtol=0.07, atol=0.02)
    assert fidelity(sage_attention_reference(q, k, v), ref).cos < 0.9  # the mask matters


def test_scale_attribute(gauss) -> None:
    (q, k, v), ref_default = gauss
    ref = float_attention(q, k, v, scale=0.25)
    assert fidelity(ref, ref_default).cos < 0.99  # a different problem
    fid = fidelity(sage_attention_reference(q, k, v, scale=0.25), ref)
    assert fid.cos >= 0.999, str(fid)
    q8, k8, v8 = (x[:, :, :200] for x in (q, k, v))
    assert np.array_equal(
        sage_attention_reference(q8, k8, v8), sage_attention_reference(q8, k8, v8, scale=1 / math.sqrt(128))
    )


# ----------------------------------------------------------------------------------------------- layouts, GQA


def test_layouts_and_gqa_agree_with_bnsh() -> None:
    shape = {"batch": 2, "q_heads": 4, "kv_heads": 2, "q_len": 70, "kv_len": 100, "head_dim": 24}
    q, k, v = make_qkv(np.random.default_rng(5), **shape)
    ref = sage_attention_reference(q, k, v, smooth_q=1)
    qs, ks, vs = make_qkv(np.random.default_rng(5), layout="BSNH", **shape)
    assert np.array_equal(qs, q.transpose(0, 2, 1, 3))
    assert np.array_equal(sage_attention_reference(qs, ks, vs, layout="BSNH", smooth_q=1), ref.transpose(0, 2, 1, 3))
    q3, k3, v3 = make_qkv(np.random.default_rng(5), layout="BSH", **shape)
    out3 = sage_attention_reference(q3, k3, v3, q_num_heads=4, kv_num_heads=2, smooth_q=1)
    assert np.array_equal(out3, ref.transpose(0, 2, 1, 3).reshape(2, 70, 4 * 24))
    # GQA: kv head g serves query heads 2g, 2g+1, the same as materialized repeated K/V
    rep = sage_attention_reference(q, np.repeat(k, 2, axis=1), np.repeat(v, 2, axis=1), smooth_q=1)
    assert np.array_equal(ref, rep)
    f = float_attention(q3, k3, v3, q_num_heads=4, kv_num_heads=2)
    assert np.allclose(f, float_attention(q, k, v).transpose(0, 2, 1, 3).reshape(2, 70, 96), atol=1e-12)
    # fp16 inputs are exact upcasts
    q16, k16, v16 = (x.astype(np.float16) for x in (q, k, v))
    assert np.array_equal(
        sage_attention_reference(q16, k16, v16),
        sage_attention_reference(*(x.astype(F32) for x in (q16, k16, v16))),
    )


def test_empty_query_and_single_key() -> None:
    rng = np.random.default_rng(9)
    q, k, v = make_qkv(rng, batch=1, q_heads=2, kv_heads=1, q_len=0, kv_len=5, head_dim=8)
    assert sage_attention_reference(q, k, v).shape == (1, 2, 0, 8)
    q, k, v = make_qkv(rng, batch=1, q_heads=2, kv_heads=1, q_len=3, kv_len=1, head_dim=8)
    out = sage_attention_reference(q, k, v, pv_dtype="fp16")
    assert np.array_equal(out, np.broadcast_to(fp16_round(v), out.shape))


# ----------------------------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "attrs,name",
    [({"layout": "NHD"}, "layout"), ({"qk_quant": "fp8"}, "qk_quant"), ({"qk_granularity": "per_tensor"},
     "qk_granularity"), ({"smooth_k": 2}, "smooth_k"), ({"smooth_q": -1}, "smooth_q"), ({"pv_dtype": "bf16"},
     "pv_dtype"), ({"pv_accum": "fp64"}, "pv_accum"), ({"kernel": "sm100"}, "kernel"), ({"is_causal": 2},
     "is_causal"), ({"scale": -1.0}, "scale"), ({"scale": float("nan")}, "scale"), ({"q_num_heads": 3},
     "q_num_heads"), ({"kv_num_heads": 5}, "kv_num_heads"), ({"causal_alignment": "center"}, "causal_alignment")],
)  # fmt: skip
def test_bad_attributes_raise(attrs: dict, name: str) -> None:
    attrs = dict(attrs)
    q, k, v = make_qkv(np.random.default_rng(0), batch=1, q_heads=2, kv_heads=1, q_len=8,
                       kv_len=attrs.pop("_kv_len", 8), head_dim=4)  # fmt: skip
    with pytest.raises(ValueError, match=name):
        sage_attention_reference(q, k, v, **attrs)


def test_bad_shapes_raise() -> None:
    rng = np.random.default_rng(0)
    q, k, v = make_qkv(rng, batch=1, q_heads=3, kv_heads=1, q_len=8, kv_len=8, head_dim=4)
    cases = [
        ((q, k, v[..., :3]), {}, "same shape"),
        ((q, k[..., :3], v[..., :3]), {}, "head sizes"),
        ((q, np.concatenate([k, k], 1), np.concatenate([v, v], 1)), {}, "multiple"),
        ((q.astype(np.float16), k, v), {}, "dtype"),
        ((q.astype(np.float64), k.astype(np.float64), v.astype(np.float64)), {}, "dtype"),
        ((q, k[:, :, :0], v[:, :, :0]), {}, "sequence length"),
        ((q[:, 0], k[:, 0], v[:, 0]), {}, "q_num_heads"),
        ((q[:, 0], k[:, 0], v[:, 0]), {"q_num_heads": 2, "kv_num_heads": 3}, "kv_num_heads"),
        ((q, k[0], v[0]), {}, "rank"),
    ]
    for args, attrs, match in cases:
        with pytest.raises(ValueError, match=match):
            sage_attention_reference(*args, **attrs)


def test_signature_matches_schema_toml() -> None:
    spec = tomllib.loads(TOML.read_text())["attribute"]
    params = inspect.signature(sage_attention_reference).parameters
    optional_inputs = [i["name"] for i in tomllib.loads(TOML.read_text())["input"] if i.get("optional")]
    assert sorted(a["name"] for a in spec) == sorted(p for p in params if p not in ("q", "k", "v", *optional_inputs))
    q, k, v = make_qkv(np.random.default_rng(0), batch=1, q_heads=1, kv_heads=1, q_len=4, kv_len=4, head_dim=4)
    for a in spec:
        assert params[a["name"]].default == a["default"], a["name"]
        for value in a.get("allowed", []):  # every allowed value is accepted
            sage_attention_reference(q, k, v, **{a["name"]: value})


# ----------------------------------------------------------------------------------------------- metrics


def test_fidelity_metrics() -> None:
    ref = np.array([1.0, -2.0, 3.0, 0.0])
    assert fidelity(ref, ref) == Fidelity(cos=1.0, rel_l1=0.0, rmse=0.0)
    f = fidelity(ref + np.array([0.5, 0, 0, -0.5]), ref)
    assert math.isclose(f.rel_l1, 1 / 6) and math.isclose(f.rmse, math.sqrt(0.125))
    assert math.isclose(fidelity(-ref, ref).cos, -1.0)
    assert fidelity(np.zeros(3), np.zeros(3)).cos == 1.0
    with pytest.raises(ValueError, match="shape"):
        fidelity(ref, ref[:3])
