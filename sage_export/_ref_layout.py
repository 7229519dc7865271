"""Shape rules and layout conversion shared by the NumPy references (docs/OP_CONTRACT.md, "Inputs").

Internally everything is BNSH ``(B, H, S, D)``; ``to_bnsh``/``from_bnsh`` convert from and back to
the caller's layout: BNSH, BSNH ``(B, S, H, D)`` or 3-D ``(B, S, H*D)`` (heads outer, channels inner).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

LAYOUTS: Final = ("BNSH", "BSNH")
INPUT_DTYPES: Final = (np.dtype(np.float32), np.dtype(np.float16))


@dataclass(frozen=True)
class Geometry:
    """Validated problem shape."""

    rank: int
    layout: str  # "BNSH" or "BSNH" for rank 4; "BSH" for rank 3
    batch: int
    q_heads: int
    kv_heads: int
    q_len: int
    kv_len: int
    head_dim: int
    q_shape: tuple[int, ...]

    @property
    def group_size(self) -> int:
        """Query heads per kv head."""
        return self.q_heads // self.kv_heads

    def kv_head_of(self) -> npt.NDArray[np.int64]:
        """kv head read by every query head: ``h // (Hq / Hkv)``."""
        return np.arange(self.q_heads, dtype=np.int64) // self.group_size


def _heads_3d(name: str, last: int, heads: int, attr: str) -> int:
    if heads <= 0:
        raise ValueError(f"{attr} must be > 0 for 3-D {name} (B, S, H*D), got {heads}")
    if last % heads != 0:
        raise ValueError(f"{attr}={heads} must divide the last dimension {last} of 3-D {name}")
    return last // heads


def geometry(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, *, layout: str, q_num_heads: int, kv_num_heads: int
) -> Geometry:
    """Check the contract's shape/type rules and return the problem geometry (raises ValueError)."""
    for name, x in (("query", q), ("key", k), ("value", v)):
        if not isinstance(x, np.ndarray):
            raise ValueError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
        if x.dtype not in INPUT_DTYPES:
            raise ValueError(f"{name} dtype must be float32 or float16 (bf16 as float32), got {x.dtype}")
        if x.ndim not in (3, 4):
            raise ValueError(f"{name} must have rank 3 or 4, got shape {x.shape}")
    if not (q.ndim == k.ndim == v.ndim):
        raise ValueError(f"query/key/value must have the same rank, got {q.ndim}, {k.ndim}, {v.ndim}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"query/key/value must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if k.shape != v.shape:
        raise ValueError(f"key and value must have the same shape, got {k.shape} and {v.shape}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if q.shape[0] != k.shape[0]:
        raise ValueError(f"query and key batch sizes differ: {q.shape[0]} vs {k.shape[0]}")
    if q.ndim == 3:
        d_q = _heads_3d("query", q.shape[2], q_num_heads, "q_num_heads")
        d_k = _heads_3d("key", k.shape[2], kv_num_heads, "kv_num_heads")
        hq, hkv, sq, skv, eff_layout = q_num_heads, kv_num_heads, q.shape[1], k.shape[1], "BSH"
    else:
        h_ax, s_ax = (1, 2) if layout == "BNSH" else (2, 1)
        hq, hkv, sq, skv = q.shape[h_ax], k.shape[h_ax], q.shape[s_ax], k.shape[s_ax]
        d_q, d_k, eff_layout = q.shape[3], k.shape[3], layout
        for attr, given, actual in (("q_num_heads", q_num_heads, hq), ("kv_num_heads", kv_num_heads, hkv)):
            if given < 0 or (given != 0 and given != actual):
                raise ValueError(f"{attr} must be 0 or the head count {actual} of the 4-D input, got {given}")
    if d_q != d_k:
        raise ValueError(f"query and key head sizes differ: {d_q} vs {d_k}")
    if d_q < 1:
        raise ValueError(f"head_dim must be >= 1, got {d_q}")
    if hkv < 1 or hq % hkv != 0:
        raise ValueError(f"query heads ({hq}) must be a multiple of kv heads ({hkv})")
    if skv < 1:
        raise ValueError(f"key/value sequence length must be >= 1, got {skv}")
    return Geometry(q.ndim, eff_layout, q.shape[0], hq, hkv, sq, skv, d_q, tuple(q.shape))


def to_bnsh(x: np.ndarray, geo: Geometry, heads: int, dtype: type = np.float32) -> np.ndarray:
    """``x`` in the caller's layout as a contiguous BNSH array of ``dtype`` (exact upcast)."""
    if geo.rank == 3:
        x = x.reshape(x.shape[0], x.shape[1], heads, x.shape[2] // heads).transpose(0, 2, 1, 3)
    elif geo.layout == "BSNH":
        x = x.transpose(0, 2, 1, 3)
    return np.ascontiguousarray(x, dtype=dtype)


def from_bnsh(x: np.ndarray, geo: Geometry) -> np.ndarray:
    """A BNSH query-shaped array back in the caller's layout (shape ``geo.q_shape``)."""
    if geo.rank == 3:
        return np.ascontiguousarray(x.transpose(0, 2, 1, 3)).reshape(geo.q_shape)
    if geo.layout == "BSNH":
        return np.ascontiguousarray(x.transpose(0, 2, 1, 3))
    return np.ascontiguousarray(x)
