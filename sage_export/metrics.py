"""Fidelity metrics of an attention output against a reference, computed in float64."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Fidelity:
    """``cos``: cosine similarity of the flattened tensors; ``rel_l1``: sum|out-ref| / sum|ref|;
    ``rmse``: sqrt(mean((out-ref)**2))."""

    cos: float
    rel_l1: float
    rmse: float

    def __str__(self) -> str:
        return f"cos={self.cos:.6f} rel_l1={self.rel_l1:.5f} rmse={self.rmse:.3e}"


def fidelity(out: npt.ArrayLike, ref: npt.ArrayLike) -> Fidelity:
    """Compare ``out`` with ``ref`` (same shape). NaNs propagate into the metrics.

    Degenerate cases: cos is 1.0 when both tensors are all zero and 0.0 when exactly one is;
    rel_l1 is 0.0 when both are all zero and inf when only ``ref`` is. Empty tensors compare perfect.
    """
    a = np.asarray(out, dtype=np.float64).ravel()
    b = np.asarray(ref, dtype=np.float64).ravel()
    if np.shape(out) != np.shape(ref):
        raise ValueError(f"out and ref shapes differ: {np.shape(out)} vs {np.shape(ref)}")
    if a.size == 0:
        return Fidelity(cos=1.0, rel_l1=0.0, rmse=0.0)
    diff = a - b
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        cos = 1.0 if na == nb else 0.0
    else:
        cos = float(np.dot(a, b)) / (na * nb)
    l1_ref = float(np.sum(np.abs(b)))
    l1_diff = float(np.sum(np.abs(diff)))
    if l1_ref == 0.0:
        rel_l1 = 0.0 if l1_diff == 0.0 else math.inf
    else:
        rel_l1 = l1_diff / l1_ref
    rmse = math.sqrt(float(np.mean(diff * diff)))
    return Fidelity(cos=cos, rel_l1=rel_l1, rmse=rmse)
