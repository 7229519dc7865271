"""Attention masks: prove that a mask is empty or exactly causal, or say why it is neither.

This module proves that a mask changes nothing (all positions attended) or equals the op's
``is_causal`` (key j attended by query i iff j ≤ i); any other mask raises ``MaskUnsupported``, and the
decomposed matcher then feeds it to the op's ``attn_mask`` input when that is exact
(``decomposed._feed_mask``). Two kinds of evidence are accepted:

* a mask whose value is a constant (initializers, or shapes known statically): checked element by
  element against the attended pattern;
* a mask built from shapes by a known construction — ``Trilu`` of an all-ones tensor whose size is
  ``(Sq, Skv)`` (TorchScript's SDPA export), ``Equal``/``Not``/``Cast``/``And`` around it, or a
  ``Slice`` of a constant lower-triangular buffer (GPT-2's causal bias) — evaluated symbolically.

Masked positions must carry -inf or a large negative value (≤ ``MASKED_THRESHOLD`` after any later
scaling): a finite "-10000" removes a key from the softmax exactly as -inf does once the row's
other scores are within ~10⁴ of each other, which holds for any trained model's logits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from onnx import TensorProto

from .graph_index import GraphIndex
from .symbolic import Poly

log = logging.getLogger(__name__)

MASKED_THRESHOLD = -1.0e4
_ZERO = Poly.const(0)
_ONE = Poly.const(1)

PatternKind = Literal["all", "none", "tril", "not_tril"]


@dataclass(frozen=True)
class Pattern:
    """Which (query i, key j) pairs are attended: all, none, ``j ≤ i + k`` (tril) or its complement."""

    kind: PatternKind
    k: Poly = _ZERO
    rows: Poly | None = None
    cols: Poly | None = None

    def negate(self) -> Pattern:
        flip: dict[str, PatternKind] = {"all": "none", "none": "all", "tril": "not_tril", "not_tril": "tril"}
        return replace(self, kind=flip[self.kind])


@dataclass(frozen=True)
class MaskVerdict:
    """``causal``: the mask equals is_causal; otherwise it masks nothing. ``note`` says how it was proven."""

    causal: bool
    note: str


class MaskUnsupported(ValueError):
    """The mask is not provably empty or causal; the message is the reason reported for the site."""


# --------------------------------------------------------------------------------- public entry
def additive_mask(index: GraphIndex, name: str, score_dims: tuple[Poly, ...], post_factor: float | None) -> MaskVerdict:
    """A tensor added to the scores: 0 = attended, very negative = masked."""
    value = index.const_value(name)
    if value is not None:
        attended = _classify_additive(value, post_factor)
        return _verdict(_numeric_pattern(attended), score_dims, f"constant mask '{name}'")
    p = index.node_of(name)
    if p is not None and p.op == "Cast":
        return additive_mask(index, p.input(0), score_dims, post_factor)
    if p is not None and p.op == "Where":
        a, b = index.scalar_value(p.input(1)), index.scalar_value(p.input(2))
        if a is not None and b is not None:
            if a == 0 and _is_masked(b, post_factor):
                return _verdict(attended_pattern(index, p.input(0)), score_dims, f"mask built by '{p.label}'")
            if b == 0 and _is_masked(a, post_factor):
                return _verdict(attended_pattern(index, p.input(0)).negate(), score_dims, f"mask built by '{p.label}'")
    raise MaskUnsupported(_unsupported_reason(index, name, "additive mask"))


def select_mask(
    index: GraphIndex,
    cond: str,
    keep_when_true: bool,
    masked_value: float | None,
    score_dims: tuple[Poly, ...],
    post_factor: float | None,
) -> MaskVerdict:
    """``Where(cond, scores, masked_value)`` (keep_when_true) or ``Where(cond, masked_value, scores)``."""
    if masked_value is None or not _is_masked(masked_value, post_factor):
        raise MaskUnsupported(f"Where on the scores fills {masked_value!r}, not -inf or a large negative value")
    pattern = attended_pattern(index, cond)
    return _verdict(pattern if keep_when_true else pattern.negate(), score_dims, f"Where condition '{cond}'")


# ----------------------------------------------------------------------------- pattern algebra
def attended_pattern(index: GraphIndex, name: str, depth: int = 0) -> Pattern:
    """Pattern of a boolean tensor (True = attended)."""
    if depth > 32:
        raise MaskUnsupported(f"mask expression at '{name}' is too deep")
    value = index.const_value(name)
    if value is not None:
        return _numeric_pattern(value.astype(bool))
    p = index.node_of(name)
    if p is None:
        raise MaskUnsupported(_unsupported_reason(index, name, "boolean mask"))
    op = p.op
    if op == "Not":
        return attended_pattern(index, p.input(0), depth + 1).negate()
    if op == "Cast":
        return nonzero_pattern(index, p.input(0), depth + 1)
    if op in ("Identity", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Expand"):
        return _through_shape_op(index, p, attended_pattern(index, p.input(0), depth + 1))
    if op == "Equal":
        for data, other in ((0, 1), (1, 0)):
            if index.scalar_value(p.input(other)) == 0.0:
                return nonzero_pattern(index, p.input(data), depth + 1).negate()
    if op == "And":
        return _and(attended_pattern(index, p.input(0), depth + 1), attended_pattern(index, p.input(1), depth + 1))
    if op == "Trilu":
        return nonzero_pattern(index, name, depth)
    if op == "Slice":
        return _slice_of_buffer(index, p)
    if op in _COMPARISONS:
        return _comparison(index, p)
    if op in ("Gather", "GatherND", "GatherElements"):
        source = attended_pattern(index, p.input(0), depth + 1)
        if source.kind in ("all", "none"):  # gathering from a uniform tensor gives the same value everywhere
            dims = index.dims(p.outputs[0])
            rows, cols = (dims[-2], dims[-1]) if dims is not None and len(dims) >= 2 else (None, None)
            return Pattern(source.kind, _ZERO, rows, cols)
    raise MaskUnsupported(_unsupported_reason(index, name, "boolean mask"))


def nonzero_pattern(index: GraphIndex, name: str, depth: int = 0) -> Pattern:
    """Pattern of where a tensor is non-zero."""
    if depth > 32:
        raise MaskUnsupported(f"mask expression at '{name}' is too deep")
    value = index.const_value(name)
    if value is not None:
        return _numeric_pattern(value != 0)
    if index.elem_type(name) == TensorProto.BOOL:
        return attended_pattern(index, name, depth + 1)
    p = index.node_of(name)
    if p is None:
        raise MaskUnsupported(_unsupported_reason(index, name, "mask"))
    op = p.op
    if op == "Cast" or (op == "Identity"):
        src_type = index.elem_type(p.input(0))
        if src_type == TensorProto.BOOL:
            return attended_pattern(index, p.input(0), depth + 1)
        return nonzero_pattern(index, p.input(0), depth + 1)
    if op == "Trilu":
        inner = nonzero_pattern(index, p.input(0), depth + 1)
        if inner.kind != "all":
            raise MaskUnsupported(f"Trilu '{p.label}' is applied to a tensor that is not all non-zero")
        k = Poly.const(0)
        if p.input(1):
            kv = index.sym_value(p.input(1))
            if kv is None or len(kv) != 1 or kv[0] is None:
                raise MaskUnsupported(f"Trilu '{p.label}' has a non-constant diagonal offset")
            k = kv[0]
        dims = index.dims(p.input(0))
        rows, cols = (dims[-2], dims[-1]) if dims is not None and len(dims) >= 2 else (inner.rows, inner.cols)
        if p.attr("upper", 1):
            return Pattern("not_tril", k - 1, rows, cols)  # j ≥ i + k  ⇔  not (j ≤ i + k − 1)
        return Pattern("tril", k, rows, cols)
    if op in ("Expand", "ConstantOfShape"):
        if op == "Expand":
            fill = index.scalar_value(p.input(0))
            shape = index.sym_value(p.input(1))
        else:
            attr = p.attr("value")
            fill = 0.0 if attr is None else float(np.ravel(_tensor_value(attr))[0])
            shape = index.sym_value(p.input(0))
        if fill is None:
            return _through_shape_op(index, p, nonzero_pattern(index, p.input(0), depth + 1))
        rows = shape[-2] if shape is not None and len(shape) >= 2 else None
        cols = shape[-1] if shape is not None and len(shape) >= 1 else None
        return Pattern("all" if fill != 0 else "none", _ZERO, rows, cols)
    if op in ("Identity", "Unsqueeze", "Squeeze", "Reshape", "Flatten"):
        return _through_shape_op(index, p, nonzero_pattern(index, p.input(0), depth + 1))
    raise MaskUnsupported(_unsupported_reason(index, name, "mask"))


# ------------------------------------------------------------------ index arithmetic (arange masks)
_COMPARISONS = {"LessOrEqual", "Less", "GreaterOrEqual", "Greater"}


@dataclass(frozen=True)
class Affine:
    """An integer tensor whose element at index (x0, x1, …) is ``const + Σ coef[axis]·x_axis``.

    transformers ≥ 5 builds masks from ``arange`` tensors unsqueezed onto the query and key axes and
    compared (``kv_idx <= q_idx``); this is what those tensors are.
    """

    rank: int
    coef: dict[int, int]
    const: Poly

    def aligned(self, rank: int) -> Affine:
        shift = rank - self.rank
        return Affine(rank, {a + shift: c for a, c in self.coef.items()}, self.const)

    def combine(self, other: Affine, sign: int) -> Affine:
        rank = max(self.rank, other.rank)
        a, b = self.aligned(rank), other.aligned(rank)
        coef = dict(a.coef)
        for axis, c in b.coef.items():
            coef[axis] = coef.get(axis, 0) + sign * c
        return Affine(rank, {k: v for k, v in coef.items() if v}, a.const + b.const * sign)


def affine_value(index: GraphIndex, name: str, depth: int = 0) -> Affine | None:
    """``name`` as an Affine function of its own indices, or None."""
    if depth > 24:
        return None
    value = index.const_value(name)
    if value is not None:
        if value.size == 1 and np.issubdtype(value.dtype, np.integer):
            return Affine(value.ndim, {}, Poly.const(int(value.ravel()[0])))
        return None
    p = index.node_of(name)
    if p is None:
        return None
    if p.op == "Range":
        start, delta = index.sym_value(p.input(0)), index.sym_value(p.input(2))
        if start is None or delta is None or len(start) != 1 or start[0] is None or delta != [_ONE]:
            return None
        return Affine(1, {0: 1}, start[0])
    sym = index.sym_value(name)
    rank = index.rank(name)
    if sym is not None and len(sym) == 1 and sym[0] is not None and rank is not None and rank <= 1:
        return Affine(rank, {}, sym[0])
    rec = lambda i: affine_value(index, p.input(i), depth + 1)  # noqa: E731
    if p.op in ("Identity", "Cast"):
        return rec(0)
    if p.op in ("Unsqueeze", "Squeeze"):
        inner, axes = rec(0), index.axes_of(p)
        if inner is None or axes is None:
            return None
        if p.op == "Unsqueeze":
            out_rank = inner.rank + len(axes)
            inserted = {a % out_rank for a in axes}
            kept = [k for k in range(out_rank) if k not in inserted]
            return Affine(out_rank, {kept[a]: c for a, c in inner.coef.items()}, inner.const)
        dropped = {a % inner.rank for a in axes} if axes else set()
        if any(a in dropped for a in inner.coef):
            return None
        remaining = [k for k in range(inner.rank) if k not in dropped]
        return Affine(len(remaining), {remaining.index(a): c for a, c in inner.coef.items()}, inner.const)
    if p.op == "Expand":
        inner, target = rec(0), index.sym_value(p.input(1))
        if inner is None or target is None:
            return None
        return inner.aligned(max(inner.rank, len(target)))
    if p.op in ("Add", "Sub"):
        a, b = rec(0), rec(1)
        return None if a is None or b is None else a.combine(b, 1 if p.op == "Add" else -1)
    if p.op == "Neg":
        a = rec(0)
        return None if a is None else Affine(a.rank, {k: -c for k, c in a.coef.items()}, -a.const)
    return None


def _comparison(index: GraphIndex, node) -> Pattern:  # type: ignore[no-untyped-def]
    """``lhs OP rhs`` over index tensors as a pattern in (query i, key j) = the last two axes."""
    lhs, rhs = affine_value(index, node.input(0)), affine_value(index, node.input(1))
    if lhs is None or rhs is None:
        raise MaskUnsupported(f"{node.op} '{node.label}' compares tensors that are not index arithmetic")
    diff = lhs.combine(rhs, -1)  # holds where  e <= 0  for the e below
    e = {"LessOrEqual": diff, "Less": diff.combine(Affine(0, {}, _ONE), 1)}.get(node.op)
    if e is None:
        neg = Affine(diff.rank, {k: -c for k, c in diff.coef.items()}, -diff.const)
        e = neg if node.op == "GreaterOrEqual" else neg.combine(Affine(0, {}, _ONE), 1)
    rank = max(e.rank, 2)
    e = e.aligned(rank)
    i_axis, j_axis = rank - 2, rank - 1
    if any(axis not in (i_axis, j_axis) for axis in e.coef):
        raise MaskUnsupported(f"{node.op} '{node.label}' depends on the batch or head index")
    a, b, c = e.coef.get(i_axis, 0), e.coef.get(j_axis, 0), e.const
    dims = index.dims(node.outputs[0])
    rows, cols = (dims[-2], dims[-1]) if dims is not None and len(dims) >= 2 else (None, None)
    if a <= 0 and b <= 0 and c.is_const and (c.value or 0) <= 0:
        return Pattern("all", _ZERO, rows, cols)  # indices are ≥ 0: a·i + b·j + c ≤ 0 always holds
    if (a, b) == (-1, 1):  # j − i + c ≤ 0  ⇔  j ≤ i − c
        return Pattern("tril", -c, rows, cols)
    if (a, b) == (1, -1):  # i − j + c ≤ 0  ⇔  j ≥ i + c  ⇔  not (j ≤ i + c − 1)
        return Pattern("not_tril", c - 1, rows, cols)
    raise MaskUnsupported(f"{node.op} '{node.label}' is an index comparison other than a causal or empty mask")


def _through_shape_op(index: GraphIndex, node, inner: Pattern) -> Pattern:  # type: ignore[no-untyped-def]
    """Unsqueeze/Reshape/Expand that keep the last two dims keep the pattern."""
    if inner.kind in ("all", "none"):
        dims = index.dims(node.outputs[0])
        if dims is not None and len(dims) >= 2:
            return replace(inner, rows=dims[-2], cols=dims[-1])
        return inner
    src, dst = index.dims(node.input(0)), index.dims(node.outputs[0])
    if src is None or dst is None or len(src) < 2 or len(dst) < 2 or src[-2:] != dst[-2:]:
        raise MaskUnsupported(f"{node.op} '{node.label}' changes the last two dimensions of a mask")
    if node.op == "Reshape" and _product_leading(src) != _product_leading(dst):
        raise MaskUnsupported(f"Reshape '{node.label}' reorders mask rows")
    return inner


def _product_leading(dims: tuple[Poly, ...]) -> Poly:
    out = _ONE
    for d in dims[:-2]:
        out = out * d
    return out


def _and(a: Pattern, b: Pattern) -> Pattern:
    if a.kind == "all":
        return _merge_extent(b, a)
    if b.kind == "all":
        return _merge_extent(a, b)
    if a.kind == "none" or b.kind == "none":
        return Pattern("none")
    if a.kind == b.kind == "tril" and a.k == b.k:
        return _merge_extent(a, b)
    raise MaskUnsupported("conjunction of two different mask patterns")


def _merge_extent(p: Pattern, other: Pattern) -> Pattern:
    return replace(
        p, rows=p.rows if p.rows is not None else other.rows, cols=p.cols if p.cols is not None else other.cols
    )


def _slice_of_buffer(index: GraphIndex, node) -> Pattern:  # type: ignore[no-untyped-def]
    """GPT-2: ``bias[:, :, kv-q:kv, :kv]`` of a constant lower-triangular buffer."""
    buffer = index.const_value(node.input(0))
    if buffer is None or buffer.ndim < 2:
        raise MaskUnsupported(f"Slice '{node.label}' of a non-constant mask")
    base = _numeric_pattern(buffer != 0)
    if base.kind != "tril" or base.k != _ZERO:
        raise MaskUnsupported(f"Slice '{node.label}' of a buffer that is not lower-triangular")
    starts, ends = index.sym_value(node.input(1)), index.sym_value(node.input(2))
    axes = index.sym_value(node.input(3)) if node.input(3) else [Poly.const(i) for i in range(len(starts or []))]
    steps = index.sym_value(node.input(4)) if node.input(4) else None
    if starts is None or ends is None or axes is None or any(x is None for x in starts + axes):
        raise MaskUnsupported(f"Slice '{node.label}' bounds could not be evaluated")
    if steps is not None and any(s != _ONE for s in steps):
        raise MaskUnsupported(f"Slice '{node.label}' has steps other than 1")
    rank = buffer.ndim
    offset = {rank - 2: _ZERO, rank - 1: _ZERO}
    for a, s in zip(axes, starts):
        assert a is not None and s is not None
        ax = (a.value or 0) % rank if a.is_const else None
        if ax is None:
            raise MaskUnsupported(f"Slice '{node.label}' has symbolic axes")
        if ax in offset:
            if s.is_const and (s.value or 0) < 0:
                raise MaskUnsupported(f"Slice '{node.label}' starts at a negative index")
            offset[ax] = s
    dims = index.dims(node.outputs[0])
    rows, cols = (dims[-2], dims[-1]) if dims is not None else (None, None)
    # element (i, j) of the slice is buffer[r0 + i, c0 + j]: attended iff c0 + j <= r0 + i
    return Pattern("tril", offset[rank - 2] - offset[rank - 1], rows, cols)


# ------------------------------------------------------------------------------------ numerics
def is_masked_value(value: float, post_factor: float | None) -> bool:
    """-inf, or ≤ ``MASKED_THRESHOLD`` once multiplied by the factor applied after it (when known)."""
    return _is_masked(value, post_factor)


def _is_masked(value: float, post_factor: float | None) -> bool:
    if value == -np.inf:
        return True
    if post_factor is None:
        return False
    return value * post_factor <= MASKED_THRESHOLD


def _classify_additive(value: np.ndarray, post_factor: float | None) -> np.ndarray:
    """Attended positions (value 0) of an additive mask; every other value must be masked."""
    v = value.astype(np.float64)
    zero = v == 0
    masked = np.isneginf(v)
    if post_factor is not None:
        masked |= v * post_factor <= MASKED_THRESHOLD
    if not np.all(zero | masked):
        raise MaskUnsupported("additive mask has values other than 0 and -inf/large negative (an attention bias)")
    return zero


def _numeric_pattern(attended: np.ndarray) -> Pattern:
    a = np.asarray(attended, dtype=bool)
    if a.ndim == 0:
        return Pattern("all" if a else "none")
    a2 = a.reshape((-1,) + a.shape[-2:]) if a.ndim >= 2 else a.reshape(1, 1, -1)
    first = a2[0]
    if not all(np.array_equal(first, s) for s in a2[1:]):
        raise MaskUnsupported("mask differs between batches or heads (a padding mask)")
    rows, cols = first.shape
    r, c = Poly.const(rows), Poly.const(cols)
    if first.all():
        return Pattern("all", _ZERO, r, c)
    if not first.any():
        return Pattern("none", _ZERO, r, c)
    i = np.arange(rows)[:, None]
    j = np.arange(cols)[None, :]
    if np.array_equal(first, j <= i):
        return Pattern("tril", _ZERO, r, c)
    if np.array_equal(first, j > i):
        return Pattern("not_tril", _ZERO, r, c)
    raise MaskUnsupported("constant mask is neither empty nor causal (padding, window or custom pattern)")


def _verdict(pattern: Pattern, score_dims: tuple[Poly, ...], source: str) -> MaskVerdict:
    sq, skv = score_dims[-2], score_dims[-1]
    if pattern.kind == "all":
        for have, want, what in ((pattern.rows, sq, "rows"), (pattern.cols, skv, "columns")):
            if have is not None and have != _ONE and have != want:
                raise MaskUnsupported(f"{source}: mask {what} {have} do not provably match the scores' {want}")
        return MaskVerdict(False, f"{source} masks nothing")
    if pattern.kind == "tril":
        if pattern.k != _ZERO:
            raise MaskUnsupported(f"{source}: causal mask with diagonal offset {pattern.k} (not top-left aligned)")
        if pattern.rows != sq or pattern.cols != skv:
            raise MaskUnsupported(
                f"{source}: causal mask extent ({pattern.rows}, {pattern.cols}) not provably (Sq, Skv) = ({sq}, {skv})"
            )
        return MaskVerdict(True, f"{source} is causal (j ≤ i) over ({sq}, {skv})")
    raise MaskUnsupported(f"{source} masks every position or keeps only the upper triangle")


def _tensor_value(t):  # type: ignore[no-untyped-def]
    from onnx import numpy_helper

    return numpy_helper.to_array(t)


def _unsupported_reason(index: GraphIndex, name: str, what: str) -> str:
    inputs = sorted(index.graph_input_ancestors(name))
    if inputs:
        return (
            f"{what} depends on graph input(s) {', '.join(inputs)} (e.g. a padding mask), "
            "so it is not provably empty or causal"
        )
    p = index.node_of(name)
    how = f"{p.op} '{p.label}'" if p is not None else f"'{name}'"
    return f"{what} produced by {how} is not a recognised empty/causal construction"
