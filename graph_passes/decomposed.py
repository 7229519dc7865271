"""Softmax-anchored matcher for attention written out as MatMul → (scale, mask) → Softmax → MatMul.

This covers torch.onnx exports of ``F.scaled_dot_product_attention`` (TorchScript and dynamo
exporters: √scale on Q and Kᵀ, Kᵀ as Transpose or Reshape-Transpose-Reshape, the IsNaN/Where guard,
Trilu causal masks, GQA expansion) and eager HF attention (MatMul → Div|Mul → [Add mask] → Softmax →
MatMul, GPT-2's ``Where`` causal bias). The walk is explicit: from the Softmax down to the P·V
MatMul, up to the Q·Kᵀ MatMul, then each operand back to a tensor the op can take. Every step
checks what it relies on and raises ``Reject`` with the reason otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from onnx import TensorProto

from .graph_index import FLOAT_TYPES, GraphIndex, Node
from .masks import MaskUnsupported, MaskVerdict, additive_mask, is_masked_value, select_mask
from .scale import Factor, FactorError, evaluate_factor, is_single_element, scale_attribute
from .sites import TOP_LEFT, AttentionSite, OpInput, Prologue, Reject, RejectedSite, Site, TensorRef
from .symbolic import Poly
from .views import Operand, resolve_operand

log = logging.getLogger(__name__)

FORM = "decomposed"
_ONE = Poly.const(1)


@dataclass
class _MaskCheck:
    kind: str  # "add" or "where"
    node: Node
    tensor: str  # the mask (Add) or the condition (Where)
    keep_when_true: bool
    masked_value: float | None
    post: Factor  # factors applied to the scores after this mask


@dataclass(frozen=True)
class _FedMask:
    """A mask given to the op's ``attn_mask`` input: ``source`` as found, ``feed`` after any Not/Unsqueeze."""

    source: str
    feed: TensorRef
    note: str


@dataclass(frozen=True)
class MatchOptions:
    """``prefer_bsnh``: when Q, K and V all come from BSNH tensors, feed those (layout BSNH)."""

    prefer_bsnh: bool = True


def find_decomposed(index: GraphIndex, options: MatchOptions) -> list[Site]:
    sites: list[Site] = []
    for node in index.nodes:
        if not node.is_op("Softmax"):
            continue
        around = _loose_neighbourhood(index, node)
        if around is None:
            continue
        try:
            sites.append(_match(index, node, options))
        except Reject as exc:
            sites.append(RejectedSite(FORM, node, around, str(exc)))
        except Exception as exc:  # noqa: BLE001 - a matcher bug must not break the other sites
            log.warning("matching the attention at %s failed", node.label, exc_info=True)
            sites.append(RejectedSite(FORM, node, around, f"internal matcher error ({type(exc).__name__}: {exc})"))
    return sites


# ------------------------------------------------------------------------------------ detection
def _loose_neighbourhood(index: GraphIndex, softmax: Node) -> list[Node] | None:
    """Softmax with a MatMul a few hops above and below: attention-like. Returns those nodes."""
    up = _search(index, softmax.input(0), upward=True, depth=6)
    down = _search(index, softmax.outputs[0], upward=False, depth=4)
    if up is None or down is None:
        return None
    return [up, softmax, down]


def _search(index: GraphIndex, name: str, upward: bool, depth: int) -> Node | None:
    frontier = [name]
    for _ in range(depth):
        nxt: list[str] = []
        for t in frontier:
            nodes = [index.node_of(t)] if upward else index.uses(t)
            for n in nodes:
                if n is None:
                    continue
                if n.is_op("MatMul"):
                    return n
                nxt.extend(n.inputs if upward else n.outputs)
        frontier = [t for t in nxt if t][:32]
    return None


# -------------------------------------------------------------------------------------- matching
def _match(index: GraphIndex, softmax: Node, options: MatchOptions) -> AttentionSite:
    notes: list[str] = []
    scores = softmax.input(0)
    sdims = index.dims(scores)
    if sdims is None:
        raise Reject("rank of the attention scores is unknown")
    rank = len(sdims)
    axis = softmax.attr("axis", -1 if index.opset >= 13 else 1)
    if axis % rank != rank - 1:
        raise Reject(f"Softmax over axis {axis} of a rank-{rank} tensor, not the key axis (last)")
    if rank != 4:
        raise Reject(f"attention scores have rank {rank}; only 4-D (batch, heads, Sq, Skv) is supported")

    pv, after = _walk_probabilities(index, softmax, notes)
    qk, before, factors, mask_checks = _walk_scores(index, softmax)

    head_dim_dims = index.dims(qk.input(0))
    if head_dim_dims is None or len(head_dim_dims) != 4:
        raise Reject("Q operand of the Q·Kᵀ MatMul is not 4-D")
    head_dim = head_dim_dims[-1]
    q_all = _operands(index, qk.input(0), "q", head_dim)
    k_all = _operands(index, qk.input(1), "kt", head_dim)
    v_all = _operands(index, pv.input(1), "v", None)
    _check_geometry(q_all[0], k_all[0], v_all[0], head_dim)
    q, k, v, layout = _choose_operands(q_all, k_all, v_all, options)
    dtype = _check_dtypes(index, q, k, v, pv)

    total = q.chain.total_factor() * k.chain.total_factor()
    for f in factors:
        total = total * f
    try:
        scale = scale_attribute(total, head_dim)
    except FactorError as exc:
        raise Reject(str(exc)) from exc
    notes.append(_scale_note(q, k, factors, scale))

    is_causal = 0
    score_dims = (q.batch, q.heads, q.seq, k.seq)
    fed: _FedMask | None = None
    prologue = Prologue(index.opset)
    for check in mask_checks:
        try:
            verdict = _check_mask(index, check, score_dims, head_dim)
        except Reject as exc:
            if fed is not None:
                raise Reject(f"{exc}; a second mask ('{fed.source}' already goes to attn_mask)") from exc
            fed = _feed_mask(index, check, score_dims, head_dim, dtype, str(exc), prologue)
            notes.append(fed.note)
            continue
        notes.append(verdict.note)
        is_causal |= int(verdict.causal)
    if is_causal and q.seq != k.seq:
        notes.append(f"causal with Sq = {q.seq}, Skv = {k.seq}: top-left aligned as the mask is (j ≤ i)")

    if k.rep != _ONE or v.rep != _ONE:
        notes.append(f"GQA expansion undone: fed {k.heads} KV heads (×{k.rep}) instead of {q.heads}")
    for name, op in (("Kᵀ", k), ("Q", q), ("V", v)):
        kinds = [n.op for n in op.chain.nodes if n.op not in ("Mul", "Div")]
        if kinds:
            notes.append(f"{name} traced through {' ← '.join(kinds)} to '{op.base}'")

    replaced = [qk, *before, softmax, *after, pv]
    structural: dict[str, int | float | str] = {
        "scale": scale,
        "is_causal": is_causal,
        "causal_alignment": TOP_LEFT,
        "layout": layout,
    }
    site = AttentionSite(
        FORM,
        softmax,
        replaced,
        pv.outputs[0],
        _feed(q, layout),
        _feed(k, layout),
        _feed(v, layout),
        structural,
        dtype,
        notes=notes,
    )
    if fed is not None:
        site.attn_mask, site.prologue = fed.feed, prologue.nodes
    _place_output(index, site, pv)
    return site


def _feed(op: Operand, layout: str) -> OpInput:
    if layout == "BSNH" or op.is_bnsh:
        return OpInput(op.base)
    return OpInput(op.base, op.perm)


def _operands(index: GraphIndex, tensor: str, role: str, head_dim: Poly | None) -> list[Operand]:
    """Candidate resolutions of an operand; for K/V only those undoing the most head expansion."""
    result = resolve_operand(index, tensor, role, head_dim)
    if isinstance(result, str):
        what = {"q": "Q", "kt": "Kᵀ", "v": "V"}[role]
        raise Reject(f"{what} operand '{tensor}': {result}")
    if role != "q":
        fewest_heads = [c for c in result if c.rep != _ONE]
        result = fewest_heads or result
    return result


def _choose_operands(
    q_all: list[Operand], k_all: list[Operand], v_all: list[Operand], options: MatchOptions
) -> tuple[Operand, Operand, Operand, str]:
    """BSNH when every operand has a BSNH base (and it is preferred), else BNSH bases where possible."""

    def pick(cands: list[Operand], perm: tuple[int, ...]) -> Operand | None:
        return next((c for c in cands if c.perm == perm), None)

    if options.prefer_bsnh:
        bsnh = [pick(c, (0, 2, 1, 3)) for c in (q_all, k_all, v_all)]
        if all(b is not None for b in bsnh):
            return bsnh[0], bsnh[1], bsnh[2], "BSNH"  # type: ignore[return-value]
    chosen = [pick(c, (0, 1, 2, 3)) or c[0] for c in (q_all, k_all, v_all)]
    return chosen[0], chosen[1], chosen[2], "BNSH"


def _check_geometry(q: Operand, k: Operand, v: Operand, head_dim: Poly) -> None:
    if q.dim != head_dim:
        raise Reject(f"Q head dimension {q.dim} differs from the scores' contraction dimension {head_dim}")
    if not (q.batch == k.batch == v.batch):
        raise Reject(f"batch sizes of Q/K/V ({q.batch}, {k.batch}, {v.batch}) are not provably equal")
    for name, op in (("K", k), ("V", v)):
        expanded = op.heads * op.rep
        if expanded != q.heads and expanded != _ONE:
            raise Reject(f"{name} has {op.heads}×{op.rep} heads against {q.heads} query heads")
    if k.heads != v.heads:
        raise Reject(f"K and V have different head counts ({k.heads} vs {v.heads})")
    if k.dim != q.dim:
        raise Reject(f"K head dimension {k.dim} is not provably Q's {q.dim}")
    if v.dim != q.dim:
        raise Reject(f"V head dimension {v.dim} differs from Q/K head dimension {q.dim} (the op needs Dv = D)")
    if k.seq != v.seq:
        raise Reject(f"K and V sequence lengths ({k.seq}, {v.seq}) are not provably equal")


def _check_dtypes(index: GraphIndex, q: Operand, k: Operand, v: Operand, pv: Node) -> int:
    types = {index.elem_type(t) for t in (q.base, k.base, v.base, pv.outputs[0])}
    if len(types) != 1 or None in types:
        raise Reject(f"Q/K/V/output element types differ or are unknown ({sorted(str(t) for t in types)})")
    (dtype,) = types
    assert dtype is not None
    if dtype not in FLOAT_TYPES or FLOAT_TYPES[dtype] == "float64":
        raise Reject(f"element type {dtype} is not float32/float16/bfloat16")
    return dtype


def _walk_probabilities(index: GraphIndex, softmax: Node, notes: list[str]) -> tuple[Node, list[Node]]:
    """From the Softmax output down to MatMul(P, V); the nodes in between."""
    t = softmax.outputs[0]
    between: list[Node] = []
    for _ in range(8):
        if index.is_graph_output(t):
            raise Reject(f"attention probabilities '{t}' are a graph output")
        users = index.uses(t)
        guard = _nan_guard(index, t, users)
        if guard is not None:
            between.extend(guard)
            notes.append("IsNaN/Where guard after Softmax dropped (no row is fully masked)")
            t = guard[1].outputs[0]
            continue
        if len(users) != 1:
            raise Reject(
                f"attention probabilities '{t}' have {len(users)} consumers ({', '.join(u.label for u in users)})"
            )
        c = users[0]
        if c.op == "Cast" and c.attr("to") in FLOAT_TYPES:
            between.append(c)
            t = c.outputs[0]
            continue
        if c.op == "Dropout":
            _check_dropout(index, c)
            between.append(c)
            notes.append(f"Dropout '{c.label}' is inactive (inference) and was dropped")
            t = c.outputs[0]
            continue
        if c.is_op("MatMul") and c.input(0) == t and c.input(1) != t:
            return c, between
        raise Reject(f"{c.op} '{c.label}' consumes the attention probabilities; expected MatMul(P, V)")
    raise Reject("no MatMul(P, V) found after the Softmax")


def _nan_guard(index: GraphIndex, t: str, users: list[Node]) -> list[Node] | None:
    """``Where(IsNaN(P), 0, P)``: the two consumers of P, or None."""
    if len(users) != 2:
        return None
    isnan = next((u for u in users if u.op == "IsNaN"), None)
    where = next((u for u in users if u.op == "Where"), None)
    if isnan is None or where is None:
        return None
    if index.sole_consumer(isnan.outputs[0]) is not where:
        return None
    if where.input(0) != isnan.outputs[0] or where.input(2) != t or index.scalar_value(where.input(1)) != 0.0:
        return None
    return [isnan, where]


def _check_dropout(index: GraphIndex, node: Node) -> None:
    if len(node.outputs) > 1 and index.is_used(node.outputs[1]):
        raise Reject(f"Dropout '{node.label}' mask output is used")
    if index.opset < 7:
        if not node.attr("is_test", 0):
            raise Reject(f"Dropout '{node.label}' is in training mode")
        return
    if index.opset >= 12 and node.input(2):
        training = index.const_value(node.input(2))
        if training is None or bool(training.ravel()[0]):
            raise Reject(f"Dropout '{node.label}' on the attention probabilities may be active (training_mode)")


def _walk_scores(index: GraphIndex, softmax: Node) -> tuple[Node, list[Node], list[Factor], list[_MaskCheck]]:
    """From the Softmax input up to MatMul(Q, Kᵀ): the nodes, score factors and masks in between."""
    t = softmax.input(0)
    nodes: list[Node] = []
    factors: list[Factor] = []
    masks: list[_MaskCheck] = []
    post = Factor(1.0)
    for _ in range(12):
        p = index.node_of(t)
        if p is None:
            raise Reject(f"attention scores '{t}' come from a graph input")
        if index.sole_consumer(t) is None:
            users = [u.label for u in index.uses(t)] + (["graph output"] if index.is_graph_output(t) else [])
            raise Reject(f"intermediate '{t}' has other consumers ({', '.join(users)})")
        if p.is_op("MatMul"):
            return p, list(reversed(nodes)), factors, masks
        nodes.append(p)
        if p.op == "Cast" and p.attr("to") in FLOAT_TYPES:
            t = p.input(0)
        elif p.op in ("Mul", "Div"):
            t, f = _score_factor(index, p)
            factors.append(f)
            post = post * f
        elif p.op == "Add":
            chain, mask = _split_scores(index, p, (0, 1))
            _check_same_shape(index, p, p.input(chain))
            masks.append(_MaskCheck("add", p, p.input(mask), True, None, post))
            t = p.input(chain)
        elif p.op == "Where":
            chain, fill = _split_scores(index, p, (1, 2))
            _check_same_shape(index, p, p.input(chain))
            masks.append(_MaskCheck("where", p, p.input(0), chain == 1, index.scalar_value(p.input(fill)), post))
            t = p.input(chain)
        else:
            raise Reject(f"{p.op} '{p.label}' between the Q·Kᵀ MatMul and the Softmax is not supported")
    raise Reject("no MatMul(Q, Kᵀ) found before the Softmax")


def _score_factor(index: GraphIndex, node: Node) -> tuple[str, Factor]:
    candidates = [(0, 1)] if node.op == "Div" else [(0, 1), (1, 0)]
    head_dims = None
    reasons = []
    for data_i, factor_i in candidates:
        data, factor = node.input(data_i), node.input(factor_i)
        if not _is_score_side(index, data):
            continue
        rank = index.rank(data)
        if rank is None or not is_single_element(index, factor, max_rank=rank):
            reasons.append(
                f"{node.op} '{node.label}' scales the scores by a non-scalar tensor '{factor}' "
                f"(shape {index.dims(factor)})"
            )
            continue
        head_dims = _head_dim_for(index, data)
        try:
            f = evaluate_factor(index, factor, head_dims)
        except FactorError as exc:
            reasons.append(f"{node.op} '{node.label}': {exc}")
            continue
        return data, (Factor(1.0) / f if node.op == "Div" else f)
    raise Reject(reasons[0] if reasons else f"{node.op} '{node.label}' on the scores is not a scaling by a scalar")


def _head_dim_for(index: GraphIndex, scores: str) -> Poly:
    """The query head dimension for a score tensor: the contraction dim of the MatMul above it."""
    t = scores
    for _ in range(12):
        p = index.node_of(t)
        if p is None:
            break
        if p.is_op("MatMul"):
            d = index.dims(p.input(0))
            if d is not None:
                return d[-1]
            break
        t = next((i for i in p.inputs if i and _is_score_side(index, i)), "")
    return Poly.sym("?head_dim")


def _is_score_side(index: GraphIndex, name: str, depth: int = 0) -> bool:
    """True when ``name`` is computed from a MatMul through score ops (Mul/Div/Add/Where/Cast)."""
    p = index.node_of(name)
    if p is None or depth > 10:
        return False
    if p.is_op("MatMul"):
        return True
    if p.op in ("Mul", "Div", "Add", "Where", "Cast", "Sub"):
        return any(_is_score_side(index, i, depth + 1) for i in p.inputs if i)
    return False


def _split_scores(index: GraphIndex, node: Node, slots: tuple[int, int]) -> tuple[int, int]:
    """Which of two inputs carries the scores (and which the mask/fill value)."""
    a, b = slots
    sa, sb = _is_score_side(index, node.input(a)), _is_score_side(index, node.input(b))
    if sa and not sb:
        return a, b
    if sb and not sa:
        return b, a
    raise Reject(f"{node.op} '{node.label}': cannot tell the scores from the mask (both or neither come from a MatMul)")


def _check_same_shape(index: GraphIndex, node: Node, scores: str) -> None:
    """The other inputs of an Add/Where on the scores must broadcast *to* the scores' shape."""
    src = index.dims(scores)
    if src is None:
        raise Reject(f"shape of the scores at {node.op} '{node.label}' is unknown")
    for other in node.inputs:
        if not other or other == scores:
            continue
        value = index.const_value(other)
        dims = tuple(Poly.const(d) for d in value.shape) if value is not None else index.dims(other)
        if dims is None or len(dims) > len(src):
            raise Reject(f"{node.op} '{node.label}' may broadcast the scores to a larger shape ({other}: {dims})")
        for have, want in zip(reversed(dims), reversed(src)):
            if have != _ONE and have != want:
                raise Reject(
                    f"{node.op} '{node.label}': '{other}' of shape {dims} does not provably broadcast "
                    f"to the scores' {src}"
                )


def _check_mask(index: GraphIndex, check: _MaskCheck, score_dims: tuple[Poly, ...], head_dim: Poly) -> MaskVerdict:
    post = check.post.resolve(head_dim)
    post_value = post.coef if post.power == 0 and post.coef > 0 else None
    try:
        if check.kind == "add":
            return additive_mask(index, check.tensor, score_dims, post_value)
        return select_mask(index, check.tensor, check.keep_when_true, check.masked_value, score_dims, post_value)
    except MaskUnsupported as exc:
        raise Reject(str(exc)) from exc


def _feed_mask(
    index: GraphIndex,
    check: _MaskCheck,
    score_dims: tuple[Poly, ...],
    head_dim: Poly,
    dtype: int,
    why: str,
    prologue: Prologue,
) -> _FedMask:
    """A mask that is not empty or causal, fed to ``attn_mask`` with the same semantics, or ``Reject``.

    * ``Add(scores, M)``: M goes in as an additive mask. The op adds it to the *scaled* scores, so every
      factor on the scores must come before the Add (a factor after it would scale M too).
    * ``Where(cond, scores, fill)`` with fill -inf or very negative: cond goes in as a bool mask (true =
      attend; through ``Not`` for ``Where(cond, fill, scores)``). The op excludes those keys; the original
      gives them exp(fill − max) ≈ 0, which differs only in rows where every key is masked (the op
      outputs 0 there, the original a uniform average or NaN).

    The mask must broadcast to the 4-D scores (B, Hq, Sq, Skv) with its last dimension exactly Skv. A mask
    of rank 1–3 is right-aligned against the scores as broadcasting does, so it goes in through an
    ``Unsqueeze`` of its leading axes (the op would read a 2-D mask as (B, Skv) key padding).
    """
    tensor = check.tensor
    where = f"{check.node.op} '{check.node.label}'"
    elem = index.elem_type(tensor)
    post = check.post.resolve(head_dim)
    post_value = post.coef if post.power == 0 and post.coef > 0 else None
    if check.kind == "add":
        if post_value != 1.0:
            raise Reject(f"{why}; the scores are scaled after the mask is added at {where} (M would need M/scale)")
        if elem != dtype:
            raise Reject(f"{why}; additive mask '{tensor}' has element type {elem}, not the scores' {dtype}")
    else:
        if elem != TensorProto.BOOL:
            raise Reject(f"{why}; the condition of {where} is not bool")
        if check.masked_value is None or not is_masked_value(check.masked_value, post_value):
            raise Reject(f"{why}; {where} fills {check.masked_value!r}, not -inf or a large negative value")
    value = index.const_value(tensor)
    dims = tuple(Poly.const(d) for d in value.shape) if value is not None else index.dims(tensor)
    if dims is None or not 1 <= len(dims) <= 4:
        raise Reject(f"{why}; mask '{tensor}' at {where} has an unknown shape or a rank other than 1–4 ({dims})")
    full = (_ONE,) * (4 - len(dims)) + tuple(dims)
    for have, want, axis in zip(full, score_dims, ("B", "Hq", "Sq", "Skv")):
        ok = have == want if axis == "Skv" else have in (_ONE, want)
        if not ok:
            raise Reject(f"{why}; mask '{tensor}' of shape {dims} does not provably broadcast to {score_dims} ({axis})")
    log.debug("site at %s: mask '%s' %s fed to attn_mask", where, tensor, dims)
    negated = check.kind == "where" and not check.keep_when_true
    feed: TensorRef = tensor
    if negated:
        feed = prologue.one("Not", [feed], "attn_mask", TensorProto.BOOL, tuple(dims))
    if len(dims) < 4:
        feed = prologue.unsqueeze(feed, list(range(4 - len(dims))), "attn_mask_4d", elem or dtype, full)
    shaped = f" through Unsqueeze to {full}" if len(dims) < 4 else ""
    if check.kind == "add":
        note = f"additive mask '{tensor}' {dims} fed to attn_mask{shaped} (added after the scale, as in the original)"
        return _FedMask(tensor, feed, note)
    note = (
        f"bool mask '{tensor}' {dims} of {where} fed to attn_mask{' through Not' if negated else ''}{shaped}; "
        "identical except rows with every key masked (op: 0, original: uniform average or NaN)"
    )
    return _FedMask(tensor, feed, note)


def _scale_note(q: Operand, k: Operand, factors: list[Factor], scale: float) -> str:
    where = []
    if q.chain.scales and k.chain.scales:
        where.append("√scale split on Q and Kᵀ")
    elif q.chain.scales or k.chain.scales:
        where.append("scale on " + ("Q" if q.chain.scales else "Kᵀ"))
    if factors:
        where.append("scale on the scores")
    value = "1/√D (default)" if scale == 0.0 else f"{scale:.9g}"
    return f"scale = {value}" + (f" from {' and '.join(where)}" if where else " (unscaled)")


def _place_output(index: GraphIndex, site: AttentionSite, pv: Node) -> None:
    """BNSH writes the P·V output itself; BSNH replaces a following BSNH Transpose or adds one."""
    out_dims = index.dims(pv.outputs[0])
    if site.structural["layout"] != "BSNH":
        site.out_dims = out_dims
        return
    site.notes.append("layout BSNH: Q/K/V fed before their BNSH transposes")
    consumer = index.sole_consumer(pv.outputs[0])
    if consumer is not None and consumer.op == "Transpose" and list(consumer.attr("perm") or []) == [0, 2, 1, 3]:
        site.bypass = consumer
        site.replaced.append(consumer)
        site.output = consumer.outputs[0]
        site.out_dims = index.dims(consumer.outputs[0])
    else:
        site.output_perm = (0, 2, 1, 3)
        site.out_dims = None if out_dims is None else (out_dims[0], out_dims[2], out_dims[1], out_dims[3])
