"""Symbolic tensor dimensions: integer polynomials over named dimensions.

A dimension is either known (``Poly.const(64)``), named by the model (``dim_param`` "seq" →
``Poly.sym("seq")``) or unknown (a fresh symbol naming the tensor and axis, equal only to itself).
Shape arithmetic in a graph (``Shape → Slice → Concat``, ``Sub`` of two lengths, the product a
``Reshape`` merges) stays exact: two dimensions are *provably* equal only when their polynomials are
identical. Nothing here guesses; an undecidable comparison answers "not proven".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Monomial = tuple[str, ...]  # sorted symbol names, repeated for powers; () is the constant term


@dataclass(frozen=True)
class Poly:
    """An integer polynomial over dimension symbols, kept in canonical form (no zero coefficients)."""

    terms: Mapping[Monomial, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", {m: c for m, c in sorted(self.terms.items()) if c != 0})

    # -- construction -----------------------------------------------------------------------------
    @staticmethod
    def const(value: int) -> Poly:
        return Poly({(): int(value)})

    @staticmethod
    def sym(name: str) -> Poly:
        return Poly({(name,): 1})

    # -- queries ----------------------------------------------------------------------------------
    @property
    def is_const(self) -> bool:
        return all(m == () for m in self.terms)

    @property
    def value(self) -> int | None:
        """The integer value when the polynomial is a constant, else None."""
        return int(self.terms.get((), 0)) if self.is_const else None

    def symbols(self) -> set[str]:
        return {s for m in self.terms for s in m}

    def is_dim_like(self) -> bool:
        """True when the value is certainly ≥ 0: a non-negative constant or a product of symbols (dims)."""
        if self.is_const:
            return (self.value or 0) >= 0
        return all(c > 0 for c in self.terms.values())

    # -- arithmetic -------------------------------------------------------------------------------
    def __add__(self, other: Poly | int) -> Poly:
        o = _as_poly(other)
        out: Counter[Monomial] = Counter(self.terms)
        out.update(o.terms)
        return Poly(dict(out))

    def __neg__(self) -> Poly:
        return Poly({m: -c for m, c in self.terms.items()})

    def __sub__(self, other: Poly | int) -> Poly:
        return self + (-_as_poly(other))

    def __mul__(self, other: Poly | int) -> Poly:
        o = _as_poly(other)
        out: Counter[Monomial] = Counter()
        for m1, c1 in self.terms.items():
            for m2, c2 in o.terms.items():
                out[tuple(sorted(m1 + m2))] += c1 * c2
        return Poly(dict(out))

    def exact_div(self, divisor: int) -> Poly | None:
        """self / divisor when every coefficient divides exactly, else None."""
        if divisor == 0 or any(c % divisor for c in self.terms.values()):
            return None
        return Poly({m: c // divisor for m, c in self.terms.items()})

    def div_poly(self, other: Poly) -> Poly | None:
        """self / other when other is a single monomial dividing every term exactly, else None."""
        if len(other.terms) != 1:
            return self.exact_div(other.value) if other.is_const and other.value else None
        ((om, oc),) = other.terms.items()
        out: dict[Monomial, int] = {}
        for m, c in self.terms.items():
            rest = Counter(m)
            rest.subtract(Counter(om))
            if any(v < 0 for v in rest.values()) or c % oc:
                return None
            out[tuple(sorted(rest.elements()))] = c // oc
        return Poly(out)

    # -- comparison -------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, int):
            other = Poly.const(other)
        return isinstance(other, Poly) and dict(self.terms) == dict(other.terms)

    def __hash__(self) -> int:
        return hash(tuple(self.terms.items()))

    def __str__(self) -> str:
        if not self.terms:
            return "0"
        parts = []
        for m, c in self.terms.items():
            body = "*".join(m)
            if not body:
                parts.append(str(c))
            elif c == 1:
                parts.append(body)
            else:
                parts.append(f"{c}*{body}")
        return " + ".join(parts).replace("+ -", "- ")

    __repr__ = __str__


def _as_poly(x: Poly | int) -> Poly:
    return x if isinstance(x, Poly) else Poly.const(int(x))


def product(values: Iterable[Poly]) -> Poly:
    out = Poly.const(1)
    for v in values:
        out = out * v
    return out


def dims_text(dims: Iterable[Poly | None] | None) -> str:
    if dims is None:
        return "?"
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"
