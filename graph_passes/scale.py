"""Scalar factors on the attention scores: constants, or expressions in the query head dimension D.

Exporters scale scores in several places: ``Div(scores, 8)``, ``Mul(scores, 0.125)``, or √scale on
both Q and Kᵀ, where the scale itself may be computed at run time as ``1/√(Shape(Q)[-1])``. Each
factor is evaluated here to ``coef · D^power``; the product of all factors then either is a number
(written as the ``scale`` attribute) or exactly ``D^(-1/2)`` (the op's default, ``scale = 0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .graph_index import INT_TYPES, GraphIndex
from .symbolic import Poly


@dataclass(frozen=True)
class Factor:
    """``coef · D^power`` with D the query head dimension."""

    coef: float
    power: Fraction = Fraction(0)

    def __mul__(self, other: Factor) -> Factor:
        return Factor(self.coef * other.coef, self.power + other.power)

    def __truediv__(self, other: Factor) -> Factor:
        return Factor(self.coef / other.coef, self.power - other.power)

    def pow(self, p: Fraction) -> Factor:
        return Factor(self.coef ** float(p), self.power * p)

    def resolve(self, head_dim: Poly) -> Factor:
        """Substitute D when the head dimension is a known integer."""
        if self.power and head_dim.is_const and head_dim.value:
            return Factor(self.coef * float(head_dim.value) ** float(self.power))
        return self

    def __str__(self) -> str:
        if not self.power:
            return f"{self.coef:.9g}"
        return f"{self.coef:.9g}·D^{self.power}"


ONE = Factor(1.0)


class FactorError(ValueError):
    """The tensor is not a scalar factor this module can evaluate (message says why)."""


def is_single_element(index: GraphIndex, name: str, max_rank: int | None = None) -> bool:
    """True when ``name`` provably holds one element (all dims 1) and its rank is ≤ max_rank."""
    dims = index.dims(name)
    if dims is None:
        v = index.const_value(name)
        return v is not None and v.size == 1 and (max_rank is None or v.ndim <= max_rank)
    return all(d == Poly.const(1) for d in dims) and (max_rank is None or len(dims) <= max_rank)


def evaluate_factor(index: GraphIndex, name: str, head_dim: Poly, depth: int = 0) -> Factor:
    """The value of the single-element tensor ``name`` as a Factor; FactorError when it is not one."""
    if depth > 24:
        raise FactorError(f"scale expression for '{name}' is too deep")
    v = index.const_value(name)
    if v is not None:
        if v.size != 1:
            raise FactorError(f"'{name}' is a non-scalar tensor of shape {list(v.shape)}")
        x = float(np.ravel(v)[0])
        if not math.isfinite(x):
            raise FactorError(f"'{name}' is not finite ({x})")
        return Factor(x)
    if not is_single_element(index, name):
        raise FactorError(f"'{name}' is not provably a single element (shape {index.dims(name)})")
    if index.elem_type(name) in INT_TYPES:
        sym = index.sym_value(name)
        if sym is None or len(sym) != 1 or sym[0] is None:
            raise FactorError(f"integer scale input '{name}' could not be evaluated")
        s = sym[0]
        if s.is_const:
            return Factor(float(s.value or 0))
        if s == head_dim:
            return Factor(1.0, Fraction(1))
        raise FactorError(f"'{name}' is the dimension {s}, not the query head dimension {head_dim}")
    p = index.node_of(name)
    if p is None:
        raise FactorError(f"'{name}' is a graph input, not a constant")
    rec = lambda i: evaluate_factor(index, p.input(i), head_dim, depth + 1)  # noqa: E731
    op = p.op
    if op in ("Cast", "CastLike", "Identity", "Squeeze", "Unsqueeze", "Reshape", "Flatten"):
        return rec(0)
    if op == "Sqrt":
        f = rec(0)
        if f.coef < 0:
            raise FactorError(f"square root of a negative scale at '{p.label}'")
        return f.pow(Fraction(1, 2))
    if op == "Reciprocal":
        return ONE / rec(0)
    if op == "Neg":
        f = rec(0)
        return Factor(-f.coef, f.power)
    if op == "Mul":
        return rec(0) * rec(1)
    if op == "Div":
        return rec(0) / rec(1)
    if op == "Pow":
        exponent = index.scalar_value(p.input(1))
        if exponent is None:
            raise FactorError(f"non-constant exponent at '{p.label}'")
        return rec(0).pow(Fraction(exponent).limit_denominator(64))
    raise FactorError(f"scale input '{name}' comes from {op} '{p.label}', which is not a scale expression")


def scale_attribute(total: Factor, head_dim: Poly) -> float:
    """The op's ``scale`` attribute for a total score factor; FactorError if it is not expressible."""
    total = total.resolve(head_dim)
    if total.power == 0:
        if not (total.coef > 0 and math.isfinite(total.coef)):
            raise FactorError(f"score scale {total.coef} is not a positive finite number")
        return float(np.float32(total.coef))
    if total.power == Fraction(-1, 2) and abs(total.coef - 1.0) < 1e-6:
        return 0.0  # the op's default: 1/sqrt(head_dim)
    raise FactorError(f"score scale {total} depends on the head dimension in a way the op cannot express")
