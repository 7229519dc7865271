"""Masks of the reference (docs/OP_CONTRACT.md, "Masks"): which keys exist per batch, which (query, key)
pairs are visible, and the additive bias — as plain boolean/float arrays broadcastable to (B, Hq, Sq, Skv)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sage_export._ref_layout import Geometry

CAUSAL_ALIGNMENTS = ("top_left", "bottom_right")


@dataclass(frozen=True)
class MaskPlan:
    valid: npt.NDArray[np.bool_]  # (B, Skv): keys left by key_lengths and a bool key-padding mask
    visible: npt.NDArray[np.bool_]  # broadcastable to (B, Hq, Sq, Skv)
    bias: npt.NDArray[np.float32] | None  # additive mask, broadcastable to (B, Hq, Sq, Skv)


def _as_4d(mask: np.ndarray, geo: Geometry) -> np.ndarray:
    """(B, Skv) key padding or a 4-D mask broadcastable to (B, Hq, Sq, Skv), as a 4-D array."""
    want = (geo.batch, geo.q_heads, geo.q_len, geo.kv_len)
    if mask.ndim == 2:
        if mask.shape != (geo.batch, geo.kv_len):
            raise ValueError(f"attn_mask of shape {mask.shape}: a 2-D mask must be (batch, key length) = {want[0::3]}")
        return mask[:, None, None, :]
    if mask.ndim == 4 and mask.shape[3] == want[3] and all(m in (1, w) for m, w in zip(mask.shape[:3], want[:3])):
        return mask
    raise ValueError(f"attn_mask of shape {mask.shape}: expected (B, Skv) or 4-D broadcastable to {want}")


def plan_masks(
    geo: Geometry,
    attn_mask: np.ndarray | None,
    key_lengths: np.ndarray | None,
    is_causal: int,
    causal_alignment: str,
) -> MaskPlan:
    if causal_alignment not in CAUSAL_ALIGNMENTS:
        raise ValueError(f"causal_alignment must be one of {CAUSAL_ALIGNMENTS}, got {causal_alignment!r}")
    keys = np.arange(geo.kv_len)
    lengths = np.full(geo.batch, geo.kv_len, dtype=np.int64)
    if key_lengths is not None:
        key_lengths = np.asarray(key_lengths)
        if key_lengths.shape != (geo.batch,) or key_lengths.dtype not in (np.int32, np.int64):
            raise ValueError(f"key_lengths must be int32/int64 of shape ({geo.batch},), got {key_lengths.dtype} {key_lengths.shape}")
        lengths = np.clip(key_lengths.astype(np.int64), 0, geo.kv_len)
    valid = keys[None, :] < lengths[:, None]
    visible = np.ones((1, 1, 1, 1), dtype=bool)
    bias = None
    if attn_mask is not None:
        m = _as_4d(np.asarray(attn_mask), geo)
        if m.dtype == np.bool_:
            if m.shape[1] == 1 and m.shape[2] == 1:  # key padding: the keys do not exist for that batch
                valid = valid & np.broadcast_to(m[:, 0, 0, :], valid.shape)
            else:
                visible = m
        elif m.dtype in (np.float32, np.float16):
            bias = m.astype(np.float32)
        else:
            raise ValueError(f"attn_mask must be bool, float32 or float16 (bf16 as float32), got {m.dtype}")
    visible = visible & valid[:, None, None, :]
    if is_causal:
        offset = lengths - geo.q_len if causal_alignment == "bottom_right" else np.zeros(geo.batch, np.int64)
        rows = np.arange(geo.q_len)
        causal = keys[None, None, :] <= rows[None, :, None] + offset[:, None, None]  # (B, Sq, Skv)
        visible = visible & causal[:, None, :, :]
    return MaskPlan(valid=valid, visible=visible, bias=bias)
