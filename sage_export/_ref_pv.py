"""P~.V of one KV block (docs/OP_CONTRACT.md, section 6): V formatting, P quantization, accumulation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from sage_export.numerics import F32, e4m3_round, fp16_round

PV_DTYPES: Final = ("fp8_e4m3", "fp16")
PV_ACCUMS: Final = ("fp32", "fp16")

FP16_CHUNK: Final = 16  # keys per m16n8k16 MMA
FP8_CHUNK: Final = 32  # keys per m16n8k32 MMA
P_RANGE: Final = 448.0
V_RANGE: Final = {"fp32": 448.0, "fp16": 2.25}  # fp8 V range by pv_accum (SA2 / SA2++)


@dataclass(frozen=True)
class PvFormat:
    """How P and V enter the P~.V product."""

    pv_dtype: str
    pv_accum: str

    @property
    def chunk(self) -> int:
        """Keys summed before the fp16 accumulator is rounded (pv_accum = fp16)."""
        return FP16_CHUNK if self.pv_dtype == "fp16" else FP8_CHUNK

    @property
    def p_range(self) -> np.float32:
        return np.float32(P_RANGE)

    @property
    def v_range(self) -> np.float32:
        return np.float32(V_RANGE[self.pv_accum])


def prepare_v(v: F32, fmt: PvFormat) -> tuple[F32, F32 | None]:
    """V as it enters the MMA, shape of ``v`` ``(..., S, D)``, and the fp8 per-channel ``deltaV (..., D)``.

    fp16: ``fp16(V)``, no delta. fp8_e4m3: ``amaxV[d] = max_j |V[j, d]|`` over all keys,
    ``V8 = e4m3(V * (Vr / amaxV))``, ``deltaV = amaxV / Vr``; a zero channel gets codes 0 and delta 0.
    """
    if fmt.pv_dtype == "fp16":
        return fp16_round(v), None
    vr = fmt.v_range
    amax = np.max(np.abs(v), axis=-2)
    zero = amax == 0
    mult = np.where(zero, np.float32(0.0), vr / np.where(zero, np.float32(1.0), amax)).astype(np.float32)
    delta = np.where(zero, np.float32(0.0), amax / vr).astype(np.float32)
    return e4m3_round(v * mult[..., None, :]), delta


def quantize_p(p: F32, fmt: PvFormat) -> F32:
    """The float ``p`` as it enters the MMA: ``fp16(p)`` or ``e4m3(p * Pr)``."""
    if fmt.pv_dtype == "fp16":
        return fp16_round(p)
    return e4m3_round(p * fmt.p_range)


def _accumulate(acc: F32, p: F32, v: F32, tmp: F32) -> None:
    """``acc += p[..., j] * v[..., j, :]`` for j in ascending order, in float32 (products are exact)."""
    for j in range(p.shape[-1]):
        np.multiply(p[..., j : j + 1], v[..., j : j + 1, :], out=tmp)
        np.add(acc, tmp, out=acc)


def block_pv(p_q: F32, v_blk: F32, fmt: PvFormat) -> F32:
    """``R[..., i, d] = sum_j p_q[..., i, j] * v_blk[..., j, d]`` over one KV block (R starts at 0).

    ``pv_accum = fp32``: one float32 sum. ``fp16``: keys in chunks (16 for fp16, 32 for fp8) from
    the block start; each chunk is summed in float32 from 0, then ``R <- fp16(R + chunk_sum)``.
    """
    out_shape = p_q.shape[:-1] + v_blk.shape[-1:]
    tmp = np.empty(out_shape, dtype=np.float32)
    if fmt.pv_accum == "fp32":
        acc = np.zeros(out_shape, dtype=np.float32)
        _accumulate(acc, p_q, v_blk, tmp)
        return acc
    r = np.zeros(out_shape, dtype=np.float32)
    chunk_sum = np.empty(out_shape, dtype=np.float32)
    n = p_q.shape[-1]
    for c0 in range(0, n, fmt.chunk):
        c1 = min(c0 + fmt.chunk, n)
        chunk_sum.fill(0.0)
        _accumulate(chunk_sum, p_q[..., c0:c1], v_blk[..., c0:c1, :], tmp)
        r = fp16_round(r + chunk_sum)
    return r
