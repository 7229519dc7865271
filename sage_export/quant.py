"""Integer quantization of Q and K (docs/OP_CONTRACT.md, sections 2 and 3).

Tile constants, the quantization-group index functions of the granularity table and the symmetric
round-half-away-from-zero quantizer. Token axes are the second-to-last axis, channels the last.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from sage_export.numerics import F32, as_f32, round_half_away_from_zero

BLOCK_Q: Final = 128
WARP_Q: Final = 32
BLOCK_K: Final = 64

GRANULARITIES: Final = ("per_thread", "per_warp", "per_block")
QMAX: Final = {"int8": 127, "int4": 7}

I64 = npt.NDArray[np.int64]


def _check_granularity(granularity: str) -> None:
    if granularity not in GRANULARITIES:
        raise ValueError(f"qk_granularity must be one of {GRANULARITIES}, got {granularity!r}")


def q_group_index(i: npt.ArrayLike, granularity: str) -> I64:
    """Q quantization group of query token(s) ``i`` within one (batch, head)."""
    _check_granularity(granularity)
    ii = np.asarray(i, dtype=np.int64)
    if granularity == "per_block":
        return ii // BLOCK_Q
    if granularity == "per_warp":
        return ii // WARP_Q
    return (ii // WARP_Q) * 8 + ii % 8


def k_group_index(j: npt.ArrayLike, granularity: str) -> I64:
    """K quantization group of key token(s) ``j`` within one (batch, kv head)."""
    _check_granularity(granularity)
    jj = np.asarray(j, dtype=np.int64)
    if granularity in ("per_block", "per_warp"):
        return jj // BLOCK_K
    return (jj // BLOCK_K) * 4 + (jj % 8) // 2


def group_amax(token_amax: F32, groups: I64) -> F32:
    """Max of ``token_amax[..., s]`` over the tokens ``s`` sharing ``groups[s]``, broadcast back to tokens."""
    _, inverse = np.unique(groups, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    sorted_ids = inverse[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    per_group = np.maximum.reduceat(token_amax[..., order], starts, axis=-1)
    return as_f32(per_group[..., inverse])


def quantize_symmetric(x: F32, groups: I64, qmax: int) -> tuple[F32, F32]:
    """Quantize ``x[..., s, d]`` with one scale per group of tokens (section 3 of the contract).

    ``amax`` covers all channels of the group's tokens; ``inv = qmax / amax``,
    ``code = clamp(round_half_away_from_zero(x * inv), -qmax, qmax)``, ``delta = amax / qmax``;
    ``amax = 0`` gives ``delta = 0`` and codes 0. Returns ``(codes, delta)``: the integer codes as
    float32 values with the shape of ``x`` and each token's group delta, shape ``x.shape[:-1]``.
    """
    xf = as_f32(x)
    if xf.shape[-2] != np.shape(groups)[0]:
        raise ValueError(f"groups has {np.shape(groups)[0]} entries for {xf.shape[-2]} tokens")
    q = np.float32(qmax)
    amax = group_amax(np.max(np.abs(xf), axis=-1), np.asarray(groups, dtype=np.int64))
    zero = amax == 0
    safe = np.where(zero, np.float32(1.0), amax)
    inv = np.where(zero, np.float32(0.0), q / safe).astype(np.float32)
    delta = np.where(zero, np.float32(0.0), amax / q).astype(np.float32)
    codes = np.clip(round_half_away_from_zero(xf * inv[..., None]), -q, q).astype(np.float32)
    return codes, delta
