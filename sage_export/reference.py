"""Independent NumPy reference of the ``com.sageattention::SageAttention`` op (docs/OP_CONTRACT.md).

``sage_attention_reference`` follows the contract step by step in float32 (integer dot products
exact); ``float_attention`` is exact softmax attention in float64 for fidelity metrics.

Where the contract leaves float32 details open, this reference reads it literally:

* formulas are evaluated as written, left to right: ``t = log2(e) * (sigma * ((dQ*dK)*dot + dS))``,
  ``dS = (dqbar*dK)*dot_bar``, epilogue ``((O / l) * dV) / Pr``; no fused multiply-add;
* every sum (k-bar, q-bar, sum of p, R over a block or over one fp16-accumulator chunk) runs in
  ascending key/token order (``numerics.sequential_sum``); with ``pv_accum = fp32`` R is one
  sequential sum over the block's keys;
* ``exp2`` is correctly rounded to float32 (``numerics.exp2_f32``);
* ``1/sqrt(D)`` is computed in double and rounded once to float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from sage_export._ref_layout import LAYOUTS, Geometry, from_bnsh, geometry, to_bnsh
from sage_export._ref_mask import CAUSAL_ALIGNMENTS, MaskPlan, plan_masks
from sage_export._ref_pv import PV_ACCUMS, PV_DTYPES, PvFormat, block_pv, prepare_v, quantize_p
from sage_export.numerics import F32, exp2_f32, sequential_sum
from sage_export.quant import BLOCK_K, BLOCK_Q, GRANULARITIES, QMAX, k_group_index, q_group_index, quantize_symmetric

QK_QUANTS: Final = tuple(QMAX)
KERNELS: Final = ("auto", "sm80", "sm89", "sm90")
LOG2E: Final = np.float32(math.log2(math.e))
Q_BAR_QMAX: Final = 127  # the smooth_q block mean is always int8


@dataclass(frozen=True)
class SageAttributes:
    """The op's attributes (sage_export/schema/sage_attention.toml), validated."""

    layout: str = "BNSH"
    q_num_heads: int = 0
    kv_num_heads: int = 0
    scale: float = 0.0
    is_causal: int = 0
    qk_quant: str = "int8"
    qk_granularity: str = "per_thread"
    smooth_k: int = 1
    smooth_q: int = 0
    pv_dtype: str = "fp8_e4m3"
    pv_accum: str = "fp32"
    kernel: str = "auto"
    causal_alignment: str = "top_left"

    def __post_init__(self) -> None:
        choices: dict[str, tuple[object, ...]] = {
            "layout": LAYOUTS,
            "is_causal": (0, 1),
            "qk_quant": QK_QUANTS,
            "qk_granularity": GRANULARITIES,
            "smooth_k": (0, 1),
            "smooth_q": (0, 1),
            "pv_dtype": PV_DTYPES,
            "pv_accum": PV_ACCUMS,
            "kernel": KERNELS,
            "causal_alignment": CAUSAL_ALIGNMENTS,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            kind = str if isinstance(allowed[0], str) else (int, np.integer)
            if not isinstance(value, kind) or value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        for name in ("q_num_heads", "kv_num_heads"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        s = self.scale
        if not isinstance(s, (int, float, np.floating, np.integer)) or not math.isfinite(s) or s < 0:
            raise ValueError(f"scale must be a finite float >= 0 (0 means 1/sqrt(head_dim)), got {s!r}")

    def sigma(self, head_dim: int) -> np.float32:
        """Softmax scale in float32: ``scale``, or ``1/sqrt(head_dim)`` (rounded once) when 0."""
        return np.float32(self.scale if self.scale != 0 else 1.0 / math.sqrt(head_dim))


@dataclass(frozen=True)
class _Prepared:
    """Quantized operands in BNSH, kv-side arrays already expanded to the query heads."""

    q_codes: npt.NDArray[np.float64]  # (B, Hq, Sq, D) integer values
    q_delta: F32  # (B, Hq, Sq)
    k_codes: npt.NDArray[np.float64]  # (B, Hq, Skv, D)
    k_delta: F32  # (B, Hq, Skv)
    qbar_codes: npt.NDArray[np.float64] | None  # (B, Hq, nQblocks, D)
    qbar_delta: F32 | None  # (B, Hq, Sq): delta of each row's query block
    v: F32  # (B, Hq, Skv, D) fp16 or e4m3 values
    v_delta: F32 | None  # (B, Hq, D), fp8 only


def _block_means(q: F32) -> tuple[F32, npt.NDArray[np.int64]]:
    """Mean of ``q[..., i, :]`` over each query block of BLOCK_Q tokens, and every row's block index."""
    sq = q.shape[-2]
    nblk = -(-sq // BLOCK_Q)
    padded = np.zeros(q.shape[:-2] + (nblk * BLOCK_Q, q.shape[-1]), dtype=np.float32)
    padded[..., :sq, :] = q
    blocks = padded.reshape(q.shape[:-2] + (nblk, BLOCK_Q, q.shape[-1]))
    counts = np.minimum(BLOCK_Q, sq - BLOCK_Q * np.arange(nblk)).astype(np.float32)
    means = sequential_sum(blocks, axis=-2) / counts[:, None]  # zero padding leaves the sums unchanged
    return means.astype(np.float32), np.arange(sq) // BLOCK_Q


def _prepare(q: F32, k: F32, v: F32, geo: Geometry, attrs: SageAttributes, valid: npt.NDArray[np.bool_]) -> _Prepared:
    """Sections 1-3 and the V side of section 6. Padding keys (not `valid`) are zeroed and take no part."""
    qmax = QMAX[attrs.qk_quant]
    keep = valid[:, None, :, None]
    k = np.where(keep, k, np.float32(0)).astype(np.float32)
    v = np.where(keep, v, np.float32(0)).astype(np.float32)
    if attrs.smooth_k:
        count = np.maximum(valid.sum(axis=-1), 1).astype(np.float32)[:, None, None, None]
        mean = sequential_sum(k, axis=-2)[..., None, :] / count
        k = np.where(keep, k - mean, np.float32(0)).astype(np.float32)
    qbar_codes = qbar_delta = None
    if attrs.smooth_q:
        qbar, row_block = _block_means(q)
        codes, delta = quantize_symmetric(qbar, np.arange(qbar.shape[-2]), Q_BAR_QMAX)
        qbar_dequant = (delta[..., None] * codes.astype(np.float32)).astype(np.float32)
        q = (q - qbar_dequant[..., row_block, :]).astype(np.float32)
        qbar_codes, qbar_delta = codes.astype(np.float64), delta[..., row_block]
    q_codes, q_delta = quantize_symmetric(q, q_group_index(np.arange(geo.q_len), attrs.qk_granularity), qmax)
    k_codes, k_delta = quantize_symmetric(k, k_group_index(np.arange(geo.kv_len), attrs.qk_granularity), qmax)
    v_values, v_delta = prepare_v(v, PvFormat(attrs.pv_dtype, attrs.pv_accum))
    heads = geo.kv_head_of()
    return _Prepared(
        q_codes=q_codes.astype(np.float64),
        q_delta=q_delta,
        k_codes=k_codes[:, heads].astype(np.float64),
        k_delta=k_delta[:, heads],
        qbar_codes=qbar_codes,
        qbar_delta=qbar_delta,
        v=np.ascontiguousarray(v_values[:, heads]),
        v_delta=None if v_delta is None else v_delta[:, heads],
    )


def _int_dot(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> F32:
    """``a @ b^T`` of integer-valued operands: exact in float64 (|sum| < 2**53), then rounded to float32
    exactly like an int32 -> float32 conversion."""
    return np.matmul(a, np.swapaxes(b, -1, -2)).astype(np.float32)


def _block_logits(pre: _Prepared, k0: int, k1: int, sigma: np.float32) -> F32:
    """Base-2 logits ``t = log2(e) * S`` of keys ``[k0, k1)`` for every query row (section 4)."""
    dk = pre.k_delta[..., None, k0:k1]
    acc = (pre.q_delta[..., :, None] * dk) * _int_dot(pre.q_codes, pre.k_codes[..., k0:k1, :])
    if pre.qbar_codes is not None and pre.qbar_delta is not None:
        rows = np.arange(pre.q_codes.shape[-2]) // BLOCK_Q
        dot_bar = _int_dot(pre.qbar_codes, pre.k_codes[..., k0:k1, :])[..., rows, :]
        acc = acc + (pre.qbar_delta[..., :, None] * dk) * dot_bar
    return (LOG2E * (sigma * acc)).astype(np.float32)


def _online_softmax(pre: _Prepared, geo: Geometry, attrs: SageAttributes, masks: MaskPlan) -> F32:
    """Section 5 over KV blocks of BLOCK_K keys, then the epilogue of section 7 (before output rounding)."""
    fmt = PvFormat(attrs.pv_dtype, attrs.pv_accum)
    sigma = attrs.sigma(geo.head_dim)
    lead = (geo.batch, geo.q_heads, geo.q_len)
    m = np.full(lead, -np.inf, dtype=np.float32)
    l = np.zeros(lead, dtype=np.float32)
    o = np.zeros(lead + (geo.head_dim,), dtype=np.float32)
    for k0 in range(0, geo.kv_len, BLOCK_K):
        k1 = min(k0 + BLOCK_K, geo.kv_len)
        t = _block_logits(pre, k0, k1, sigma)
        if masks.bias is not None:
            t = (t + LOG2E * masks.bias[..., k0:k1]).astype(np.float32)
        t = np.where(masks.visible[..., k0:k1], t, np.float32(-np.inf)).astype(np.float32)
        m_new = np.maximum(m, np.max(t, axis=-1))  # a row without unmasked keys keeps m (block skipped)
        with np.errstate(invalid="ignore"):
            alpha = np.where(np.isneginf(m), np.float32(0.0), exp2_f32(m - m_new)).astype(np.float32)
            p = np.where(np.isneginf(t), np.float32(0.0), exp2_f32(t - m_new[..., None])).astype(np.float32)
        l = (alpha * l + sequential_sum(p, axis=-1)).astype(np.float32)
        r = block_pv(quantize_p(p, fmt), pre.v[..., k0:k1, :], fmt)
        o = (alpha[..., None] * o + r).astype(np.float32)
        m = m_new
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(l[..., None] > 0, o / l[..., None], np.float32(0))  # fully masked rows give 0
    if pre.v_delta is not None:
        out = (out * pre.v_delta[..., None, :]) / fmt.p_range
    return out.astype(np.float32)


def sage_attention_reference(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    layout: str = "BNSH",
    q_num_heads: int = 0,
    kv_num_heads: int = 0,
    scale: float = 0.0,
    is_causal: int = 0,
    qk_quant: str = "int8",
    qk_granularity: str = "per_thread",
    smooth_k: int = 1,
    smooth_q: int = 0,
    pv_dtype: str = "fp8_e4m3",
    pv_accum: str = "fp32",
    kernel: str = "auto",
    causal_alignment: str = "top_left",
    attn_mask: np.ndarray | None = None,
    key_lengths: np.ndarray | None = None,
) -> F32:
    """SageAttention output as float32 (before rounding to T), same layout and shape as ``q``.

    Inputs are float32 or float16 arrays (bfloat16 callers pass float32 arrays already rounded to
    bf16; round the result with ``numerics.round_to_dtype``). Attributes as in
    sage_export/schema/sage_attention.toml; ``kernel`` is validated and ignored. Raises ValueError
    naming the offending argument.
    """
    attrs = SageAttributes(
        layout, q_num_heads, kv_num_heads, scale, is_causal, qk_quant, qk_granularity,
        smooth_k, smooth_q, pv_dtype, pv_accum, kernel, causal_alignment,
    )  # fmt: skip
    geo = geometry(q, k, v, layout=layout, q_num_heads=q_num_heads, kv_num_heads=kv_num_heads)
    masks = plan_masks(geo, attn_mask, key_lengths, attrs.is_causal, causal_alignment)
    if geo.q_len == 0:
        return np.zeros(geo.q_shape, dtype=np.float32)
    qb, kb, vb = to_bnsh(q, geo, geo.q_heads), to_bnsh(k, geo, geo.kv_heads), to_bnsh(v, geo, geo.kv_heads)
    out = _online_softmax(_prepare(qb, kb, vb, geo, attrs, masks.valid), geo, attrs, masks)
    return from_bnsh(out, geo)


def float_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    layout: str = "BNSH",
    q_num_heads: int = 0,
    kv_num_heads: int = 0,
    scale: float = 0.0,
    is_causal: int = 0,
    causal_alignment: str = "top_left",
    attn_mask: np.ndarray | None = None,
    key_lengths: np.ndarray | None = None,
) -> npt.NDArray[np.float64]:
    """Exact softmax attention in float64, same shape conventions, mask rules and rules as the op."""
    attrs = SageAttributes(layout, q_num_heads, kv_num_heads, scale, is_causal)
    geo = geometry(q, k, v, layout=layout, q_num_heads=q_num_heads, kv_num_heads=kv_num_heads)
    masks = plan_masks(geo, attn_mask, key_lengths, attrs.is_causal, causal_alignment)
    if geo.q_len == 0:
        return np.zeros(geo.q_shape, dtype=np.float64)
    heads = geo.kv_head_of()
    qb = to_bnsh(q, geo, geo.q_heads, np.float64)
    kb = to_bnsh(k, geo, geo.kv_heads, np.float64)[:, heads]
    vb = to_bnsh(v, geo, geo.kv_heads, np.float64)[:, heads]
    sigma = float(scale) if scale != 0 else 1.0 / math.sqrt(geo.head_dim)
    s = sigma * np.matmul(qb, np.swapaxes(kb, -1, -2))
    if masks.bias is not None:
        s = s + masks.bias.astype(np.float64)
    s = np.where(masks.visible, s, -np.inf)
    row_max = np.max(s, axis=-1, keepdims=True)
    p = np.exp(s - np.where(np.isfinite(row_max), row_max, 0.0))
    denom = np.sum(p, axis=-1, keepdims=True)
    out = np.where(denom > 0, np.matmul(p, vb) / np.where(denom > 0, denom, 1.0), 0.0)  # fully masked rows: 0
    return from_bnsh(out, geo)
