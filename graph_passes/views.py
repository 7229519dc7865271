"""Tracing Q, Kᵀ and V back through layout ops to the tensors SageAttention can take directly.

Between a projection and the attention MatMuls, exporters insert pure data movement: Transpose
(BSNH → BNSH, and K → Kᵀ as one ``Transpose`` or as ``Reshape → Transpose → Reshape``), GQA
expansion (``Unsqueeze → Expand → Reshape`` repeating each KV head), and scalar multiplications
(√scale on Q and Kᵀ). This module describes such a chain exactly.

Model: a *base* tensor's non-unit axes are *atoms*. A view is a tuple of axes, each axis the
row-major product of some atoms (a unit axis has none). Transpose permutes axes, Unsqueeze/Squeeze
add/remove unit axes, Reshape regroups the row-major atom sequence (it may merge, never split an
atom), Expand turns a unit axis into a *broadcast atom*. If every op of the chain can be replayed
this way, the final view says exactly which base axis plays batch, heads, sequence and head_dim,
and whether heads are expanded — heads = (kv_head, broadcast) means query head h reads KV head
h // rep, which is the op's GQA rule. Anything else is not proven and the chain is cut shorter.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import permutations

from .graph_index import GraphIndex, Node
from .scale import Factor, FactorError, evaluate_factor, is_single_element
from .symbolic import Poly, product

log = logging.getLogger(__name__)

_ONE = Poly.const(1)
_LAYOUT_OPS = {"Transpose", "Reshape", "Unsqueeze", "Squeeze", "Expand", "Identity"}
_MAX_CHAIN = 16


@dataclass(frozen=True)
class Atom:
    key: tuple[str, ...]  # ("base", axis) or ("bcast", node label, axis)
    size: Poly

    @property
    def is_broadcast(self) -> bool:
        return self.key[0] == "bcast"


Axis = tuple[Atom, ...]


def axis_size(axis: Axis) -> Poly:
    return product(a.size for a in axis)


@dataclass
class ScaleStep:
    """A Mul/Div of the operand by a scalar; ``divide`` for Div."""

    node: Node
    factor: Factor
    divide: bool


@dataclass
class Chain:
    """Nodes from a base tensor to the operand, and the replayed view."""

    base: str
    nodes: list[Node]  # operand-side first (closest to the MatMul) … base-side last
    axes: tuple[Axis, ...]
    scales: list[ScaleStep] = field(default_factory=list)

    def total_factor(self) -> Factor:
        f = Factor(1.0)
        for s in self.scales:
            f = f / s.factor if s.divide else f * s.factor
        return f


@dataclass(frozen=True)
class Operand:
    """An attention operand resolved to a base tensor in op roles.

    ``perm`` maps the roles (batch, heads, seq, dim) to base axes: feeding ``Transpose(base, perm)``
    gives BNSH. ``heads`` is the base's head count, ``rep`` the expansion factor (1 if none).
    """

    base: str
    perm: tuple[int, int, int, int]
    batch: Poly
    heads: Poly
    rep: Poly
    seq: Poly
    dim: Poly
    chain: Chain

    @property
    def is_bnsh(self) -> bool:
        return self.perm == (0, 1, 2, 3)

    @property
    def is_bsnh(self) -> bool:
        return self.perm == (0, 2, 1, 3)


# ------------------------------------------------------------------------------- chain collection
def _data_input(index: GraphIndex, node: Node, head_dim: Poly | None) -> tuple[str, ScaleStep | None] | None:
    """The data input of a layout/scale node, with the scale step for Mul/Div; None if not one."""
    if node.domain not in ("", "ai.onnx"):
        return None
    if node.op in _LAYOUT_OPS:
        return node.input(0), None
    if node.op in ("Mul", "Div") and head_dim is not None:
        candidates = [(0, 1)] if node.op == "Div" else [(0, 1), (1, 0)]
        for data_i, factor_i in candidates:
            data, factor = node.input(data_i), node.input(factor_i)
            rank = index.rank(data)
            if rank is None or not is_single_element(index, factor, max_rank=rank):
                continue
            try:
                f = evaluate_factor(index, factor, head_dim)
            except FactorError:
                continue
            return data, ScaleStep(node, f, divide=node.op == "Div")
    return None


def collect_chain(index: GraphIndex, tensor: str, head_dim: Poly | None) -> list[tuple[Node, str, ScaleStep | None]]:
    """Walk from ``tensor`` towards its producers through layout/scale nodes: (node, data input, scale)."""
    out: list[tuple[Node, str, ScaleStep | None]] = []
    cur = tensor
    while len(out) < _MAX_CHAIN:
        p = index.node_of(cur)
        if p is None or cur != p.outputs[0]:
            break
        step = _data_input(index, p, head_dim)
        if step is None:
            break
        out.append((p, step[0], step[1]))
        cur = step[0]
    return out


# ---------------------------------------------------------------------------------------- replay
def _initial_view(dims: Sequence[Poly]) -> tuple[Axis, ...]:
    return tuple(() if d == _ONE else (Atom(("base", str(i)), d),) for i, d in enumerate(dims))


def _replay(index: GraphIndex, node: Node, axes: tuple[Axis, ...]) -> tuple[Axis, ...] | None:
    op = node.op
    rank = len(axes)
    if op in ("Identity", "Mul", "Div"):
        return axes
    if op == "Transpose":
        perm = node.attr("perm") or list(reversed(range(rank)))
        if sorted(perm) != list(range(rank)):
            return None
        return tuple(axes[p] for p in perm)
    if op == "Unsqueeze":
        add = index.axes_of(node)
        if add is None:
            return None
        out_rank = rank + len(add)
        out = list(axes)
        for a in sorted(x % out_rank for x in add):
            out.insert(a, ())
        return tuple(out)
    if op == "Squeeze":
        drop = index.axes_of(node)
        if drop is None:
            return None
        if not drop:
            drop = [i for i, ax in enumerate(axes) if not ax]
        drop_set = {a % rank for a in drop}
        if any(axes[a] for a in drop_set):
            return None
        return tuple(ax for i, ax in enumerate(axes) if i not in drop_set)
    if op == "Expand":
        target = index.sym_value(node.input(1))
        if target is None or any(t is None for t in target) or len(target) < rank:
            return None
        padded = [()] * (len(target) - rank) + list(axes)
        out = []
        for i, (ax, t) in enumerate(zip(padded, target)):
            assert t is not None
            if t == _ONE or axis_size(ax) == t:
                out.append(ax)
            elif not ax:
                out.append((Atom(("bcast", node.label, str(i)), t),))
            else:
                return None
        return tuple(out)
    if op == "Reshape":
        return _replay_reshape(index, node, axes)
    return None


def _replay_reshape(index: GraphIndex, node: Node, axes: tuple[Axis, ...]) -> tuple[Axis, ...] | None:
    target = index.sym_value(node.input(1))
    if target is None or any(t is None for t in target):
        return None
    allowzero = node.attr("allowzero", 0)
    sizes: list[Poly | None] = []
    for i, t in enumerate(target):
        assert t is not None
        if t == Poly.const(0) and not allowzero:
            if i >= len(axes):
                return None
            sizes.append(axis_size(axes[i]))
        elif t == Poly.const(-1):
            sizes.append(None)
        else:
            sizes.append(t)
    if sum(s is None for s in sizes) > 1:
        return None
    flat = [a for ax in axes for a in ax]
    infer_at = next((i for i, s in enumerate(sizes) if s is None), len(sizes))
    left, right = sizes[:infer_at], sizes[infer_at + 1 :]
    out_left: list[Axis] = []
    pos = 0
    for s in left:
        assert s is not None
        group, pos = _take(flat, pos, s, forward=True)
        if group is None:
            return None
        out_left.append(group)
    out_right: list[Axis] = []
    end = len(flat)
    for s in reversed(right):
        assert s is not None
        group, end = _take(flat, end, s, forward=False)
        if group is None:
            return None
        out_right.insert(0, group)
    if end < pos:
        return None
    middle = tuple(flat[pos:end])
    if infer_at == len(sizes):
        if middle:
            return None
        return tuple(out_left)
    return tuple(out_left) + (middle,) + tuple(out_right)


def _take(flat: list[Atom], pos: int, size: Poly, forward: bool) -> tuple[Axis | None, int]:
    """Consume atoms from ``pos`` whose product is exactly ``size``; (None, pos) if impossible."""
    if size == _ONE:
        return (), pos
    group: list[Atom] = []
    acc = _ONE
    i = pos
    while (i < len(flat)) if forward else (i > 0):
        atom = flat[i] if forward else flat[i - 1]
        group.append(atom)
        acc = acc * atom.size
        i = i + 1 if forward else i - 1
        if acc == size:
            return (tuple(group) if forward else tuple(reversed(group))), i
    return None, pos


def replay_chain(index: GraphIndex, chain: list[tuple[Node, str, ScaleStep | None]], depth: int) -> Chain | None:
    """Replay the ``depth`` nodes nearest the operand from their base; None if not expressible."""
    steps = chain[:depth]
    base = steps[-1][1] if steps else None
    return _replay_from(index, base, steps)


def _replay_from(index: GraphIndex, base: str | None, steps: list[tuple[Node, str, ScaleStep | None]]) -> Chain | None:
    if base is None:
        return None
    dims = index.dims(base)
    if dims is None:
        return None
    axes: tuple[Axis, ...] | None = _initial_view(dims)
    for node, _, _ in reversed(steps):
        axes = _replay(index, node, axes)  # type: ignore[arg-type]
        if axes is None:
            return None
    assert axes is not None
    return Chain(base=base, nodes=[s[0] for s in steps], axes=axes, scales=[s[2] for s in steps if s[2] is not None])


# ------------------------------------------------------------------------------- interpretation
ROLE_ORDER = {
    "q": ("batch", "heads", "seq", "dim"),
    "kt": ("batch", "heads", "dim", "seq"),
    "v": ("batch", "heads", "seq", "dim"),
}


def interpret(chain: Chain, role: str, base_rank: int) -> Operand | str:
    """Read the final view of ``chain`` as operand ``role`` ('q', 'kt' or 'v'); a reason string if not."""
    if len(chain.axes) != 4:
        return f"operand has rank {len(chain.axes)}, not 4"
    if base_rank != 4:
        return f"base tensor '{chain.base}' has rank {base_rank}, not 4"
    names = ROLE_ORDER[role]
    role_axis = dict(zip(names, chain.axes))
    assigned: dict[str, int] = {}
    rep = _ONE
    for name in ("batch", "heads", "seq", "dim"):
        atoms = role_axis[name]
        base_atoms = [a for a in atoms if not a.is_broadcast]
        bcast = [a for a in atoms if a.is_broadcast]
        if name == "heads" and role != "q":
            if len(bcast) > 1 or len(base_atoms) > 1:
                return "heads axis mixes several tensor axes"
            if bcast and base_atoms and atoms.index(bcast[0]) < atoms.index(base_atoms[0]):
                return "KV heads are repeated tile-wise (head h reads KV head h % Hkv), not the op's h // rep"
            if bcast:
                rep = bcast[0].size
        elif bcast:
            return f"{name} axis is broadcast (Expand), which the op cannot express"
        if len(base_atoms) > 1:
            return f"{name} axis merges several tensor axes"
        if base_atoms:
            assigned[name] = int(base_atoms[0].key[1])
    free_roles = [n for n in ("batch", "heads", "seq", "dim") if n not in assigned]
    free_axes = sorted(set(range(4)) - set(assigned.values()))
    if len(free_roles) != len(free_axes):
        return "operand axes do not map one-to-one onto the base tensor"
    perm = _choose_perm(assigned, free_roles, free_axes)
    sizes = {n: axis_size(tuple(a for a in role_axis[n] if not a.is_broadcast)) for n in names}
    return Operand(chain.base, perm, sizes["batch"], sizes["heads"], rep, sizes["seq"], sizes["dim"], chain)


def _choose_perm(assigned: dict[str, int], free_roles: list[str], free_axes: list[int]) -> tuple[int, int, int, int]:
    """Role→base-axis permutation; unit axes are placed to make it BNSH or BSNH when possible."""
    roles = ("batch", "heads", "seq", "dim")
    options = []
    for choice in permutations(free_axes):
        full = dict(assigned)
        full.update(zip(free_roles, choice))
        options.append(tuple(full[r] for r in roles))
    for preferred in ((0, 1, 2, 3), (0, 2, 1, 3)):
        if preferred in options:
            return preferred  # type: ignore[return-value]
    return options[0]  # type: ignore[return-value]


def resolve_operand(index: GraphIndex, tensor: str, role: str, head_dim: Poly | None) -> list[Operand] | str:
    """Every chain from ``tensor`` that interprets as ``role``, longest first; a reason string if none."""
    chain = collect_chain(index, tensor, head_dim)
    found: list[Operand] = []
    last_reason = "operand could not be traced"
    for depth in range(len(chain), -1, -1):
        replayed = _replay_from(index, tensor, []) if depth == 0 else replay_chain(index, chain, depth)
        if replayed is None:
            continue
        rank = index.rank(replayed.base)
        result = interpret(replayed, role, rank if rank is not None else -1)
        if isinstance(result, str):
            last_reason = result
        else:
            found.append(result)
    return found or last_reason
