"""Fused attention ops that map onto SageAttention one-to-one when their extra features are off.

* ONNX ``Attention`` (opset 23–25): no past/present, no softcap, no window, no qk_matmul_output;
  ``attn_mask`` and ``nonpad_kv_seqlen`` go to the op's mask inputs (``fused_masks.py``). 4-D → BNSH,
  3-D → 3-D.
* com.microsoft ``MultiHeadAttention``: separate 3-D query/key/value, no bias or cache;
  ``key_padding_mask`` and ``attention_bias`` go to the op's mask inputs.
* com.microsoft ``Attention``: the fused input projection becomes MatMul (+ Add bias) → Split into 3-D
  Q/K/V; no past/present, rotary or unequal Q/K/V hidden sizes; ``mask_index`` and ``attention_bias`` go
  to the op's mask inputs.
* com.microsoft ``GroupQueryAttention``: a prompt without cache, rotary, window, softcap or extra
  inputs, whose ``seqlens_k``/``total_sequence_length`` provably say "no padding".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from .fused_masks import MaskPlan, contrib_masks, onnx_attention_masks
from .graph_index import FLOAT_TYPES, GraphIndex, Node
from .sites import TOP_LEFT, AttentionSite, OpInput, Prologue, Reject, RejectedSite, Site, TensorRef
from .symbolic import Poly

log = logging.getLogger(__name__)

ONNX_ATTENTION = "onnx::Attention"
MHA = "com.microsoft::MultiHeadAttention"
MS_ATTENTION = "com.microsoft::Attention"
GQA = "com.microsoft::GroupQueryAttention"


@dataclass(frozen=True)
class FusedOptions:
    """``assume_unpadded_gqa``: treat GroupQueryAttention's runtime seqlens_k as "no padding"."""

    assume_unpadded_gqa: bool = False


def find_fused(index: GraphIndex, options: FusedOptions) -> list[Site]:
    sites: list[Site] = []
    matchers: dict[tuple[str, str], tuple[str, Callable[[GraphIndex, Node, FusedOptions], AttentionSite]]] = {
        ("", "Attention"): (ONNX_ATTENTION, _onnx_attention),
        ("com.microsoft", "MultiHeadAttention"): (MHA, _multi_head_attention),
        ("com.microsoft", "Attention"): (MS_ATTENTION, _contrib_attention),
        ("com.microsoft", "GroupQueryAttention"): (GQA, _group_query_attention),
    }
    for node in index.nodes:
        domain = "" if node.domain == "ai.onnx" else node.domain
        entry = matchers.get((domain, node.op))
        if entry is None:
            continue
        form, fn = entry
        try:
            sites.append(fn(index, node, options))
        except Reject as exc:
            sites.append(RejectedSite(form, node, [node], str(exc)))
        except Exception as exc:  # noqa: BLE001 - a matcher bug must not break the other sites
            log.warning("matching %s at %s failed", form, node.label, exc_info=True)
            sites.append(RejectedSite(form, node, [node], f"internal matcher error ({type(exc).__name__}: {exc})"))
    return sites


# ----------------------------------------------------------------------------------------- common
def _dims(index: GraphIndex, name: str, what: str, ranks: tuple[int, ...]) -> tuple[Poly, ...]:
    d = index.dims(name)
    if d is None:
        raise Reject(f"shape of {what} '{name}' is unknown")
    if len(d) not in ranks:
        raise Reject(f"{what} has rank {len(d)}; supported: {', '.join(map(str, ranks))}")
    return d


def _dtype(index: GraphIndex, node: Node, names: list[str]) -> int:
    types = {index.elem_type(n) for n in names}
    if len(types) != 1 or None in types:
        raise Reject(f"query/key/value/output element types differ or are unknown ({sorted(str(t) for t in types)})")
    (t,) = types
    if t not in FLOAT_TYPES or FLOAT_TYPES[t] == "float64":
        raise Reject(f"element type {t} is not float32/float16/bfloat16")
    return t  # type: ignore[return-value]


def _no_inputs(node: Node, slots: dict[int, str]) -> None:
    for i, what in slots.items():
        if node.input(i):
            raise Reject(f"input {what} is present")


def _unused_outputs(index: GraphIndex, node: Node, slots: dict[int, str]) -> None:
    for i, what in slots.items():
        if i < len(node.outputs) and index.is_used(node.outputs[i]):
            raise Reject(f"output {what} is used")


def _require(cond: bool, reason: str) -> None:
    if not cond:
        raise Reject(reason)


def _contrib_structural(node: Node, is_causal: int, heads: int) -> dict[str, int | float | str]:
    """The SageAttention attributes of a com.microsoft attention node (equal Q and KV head counts, top-left
    causal: both contrib ops only mask causally without a cache, where Sq = Skv)."""
    return {
        "scale": _scale(node),
        "is_causal": is_causal,
        "causal_alignment": TOP_LEFT,
        "q_num_heads": heads,
        "kv_num_heads": heads,
    }


def _scale(node: Node) -> float:
    s = node.attr("scale", 0.0)
    _require(s is None or s >= 0.0, f"negative scale {s}")
    return float(s or 0.0)


def _causal(q_seq: Poly, kv_seq: Poly, what: str) -> None:
    _require(
        q_seq == kv_seq,
        f"{what} with Sq = {q_seq}, Skv = {kv_seq} not provably equal "
        "(this op's causal alignment for Sq ≠ Skv is not established)",
    )


# ------------------------------------------------------------------------------ ONNX Attention
def _fused_site(
    form: str,
    index: GraphIndex,
    node: Node,
    structural: dict,
    dtype: int,
    notes: list[str] | None = None,
    masks: MaskPlan | None = None,
    prologue: Prologue | None = None,
    qkv: tuple[TensorRef, TensorRef, TensorRef] | None = None,
) -> AttentionSite:
    """A fused attention op replaced one for one: query, key and value are its first three inputs unless
    ``qkv`` (tensors of the ``prologue``) says otherwise; ``masks`` feed the op's mask inputs."""
    q, k, v = qkv if qkv is not None else (node.input(0), node.input(1), node.input(2))
    site = AttentionSite(
        form,
        node,
        [node],
        node.outputs[0],
        OpInput(q),
        OpInput(k),
        OpInput(v),
        structural,
        dtype,
        out_dims=index.dims(node.outputs[0]),
        notes=notes if notes is not None else [],
    )
    if masks is not None:
        site.attn_mask, site.key_lengths = masks.attn_mask, masks.key_lengths
        site.notes.extend(masks.notes)
    if prologue is not None:
        site.prologue = prologue.nodes
    return site


def _onnx_attention(index: GraphIndex, node: Node, options: FusedOptions) -> AttentionSite:
    _require(index.opset >= 23, f"Attention in default-domain opset {index.opset} (< 23)")
    _no_inputs(node, {4: "past_key", 5: "past_value"})
    _unused_outputs(index, node, {1: "present_key", 2: "present_value", 3: "qk_matmul_output"})
    _require(not node.attr("softcap", 0.0), f"softcap = {node.attr('softcap')}")
    for w in ("left_window_size", "right_window_size"):
        _require(node.attr(w, -1) == -1, f"{w} = {node.attr(w)}")
    q = _dims(index, node.input(0), "Q", (3, 4))
    k = _dims(index, node.input(1), "K", (len(q),))
    v = _dims(index, node.input(2), "V", (len(q),))
    dtype = _dtype(index, node, [node.input(0), node.input(1), node.input(2), node.outputs[0]])
    notes: list[str] = []
    structural: dict[str, int | float | str] = {"scale": _scale(node)}
    if len(q) == 4:
        _require(k[3] == q[3], f"K head size {k[3]} is not provably Q's {q[3]}")
        _require(v[3] == q[3], f"V head size {v[3]} differs from Q/K head size {q[3]} (the op needs Dv = D)")
        _require(v[:3] == k[:3], "K and V shapes differ")
        structural["layout"] = "BNSH"
        score_dims = (q[0], q[1], q[2], k[2])
    else:
        nq, nkv = node.attr("q_num_heads", 0), node.attr("kv_num_heads", 0)
        _require(bool(nq) and bool(nkv), "3-D Attention without q_num_heads/kv_num_heads")
        _require(
            k[2] * nq == q[2] * nkv,
            f"Q hidden {q[2]} / {nq} heads and K hidden {k[2]} / {nkv} heads give different head sizes",
        )
        _require(v[2] == k[2], f"V hidden {v[2]} differs from K hidden {k[2]} (the op needs Dv = D)")
        structural.update(q_num_heads=int(nq), kv_num_heads=int(nkv))
        score_dims = (q[0], Poly.const(int(nq)), q[1], k[1])
    sq, skv = score_dims[2], score_dims[3]
    is_causal = int(node.attr("is_causal", 0))
    prologue = Prologue(index.opset)
    masks = onnx_attention_masks(index, node, score_dims, dtype, bool(is_causal), prologue)
    is_causal |= int(masks.causal)
    if is_causal and sq != skv and masks.key_lengths is None:
        # Without a cache the causal offset is 0: key j visible to query i iff j <= i (the ONNX
        # reference and ORT agree), i.e. top-left for any Sq, Skv.
        notes.append(f"causal with Sq = {sq}, Skv = {skv}: no cache, so top-left aligned")
    if node.attr("softmax_precision") is not None:
        notes.append("softmax_precision ignored: the op's softmax is float32")
    structural["is_causal"] = is_causal
    structural["causal_alignment"] = masks.alignment
    return _fused_site(ONNX_ATTENTION, index, node, structural, dtype, notes, masks, prologue)


# ------------------------------------------------------------------------- MultiHeadAttention
def _multi_head_attention(index: GraphIndex, node: Node, options: FusedOptions) -> AttentionSite:
    _require(bool(node.input(1)) and bool(node.input(2)), "packed QKV/KV input (key or value absent)")
    _no_inputs(
        node,
        {
            3: "bias",
            6: "past_key",
            7: "past_value",
            8: "past_sequence_length",
            9: "cache_indirection",
        },
    )
    _unused_outputs(index, node, {1: "present_key", 2: "present_value", 3: "qk"})
    q = _dims(index, node.input(0), "query", (3,))
    k = _dims(index, node.input(1), "key", (3,))
    v = _dims(index, node.input(2), "value", (3,))
    heads = int(node.attr("num_heads", 0))
    _require(heads > 0, "num_heads missing")
    _require(k[2] == q[2], f"key hidden {k[2]} differs from query hidden {q[2]}")
    _require(v[2] == k[2], f"value hidden {v[2]} differs from key hidden {k[2]} (the op needs Dv = D)")
    dtype = _dtype(index, node, [node.input(0), node.input(1), node.input(2), node.outputs[0]])
    is_causal = int(node.attr("unidirectional", 0))
    if is_causal:
        _causal(q[1], k[1], "unidirectional = 1")
    prologue = Prologue(index.opset)
    masks = contrib_masks(index, node, prologue, 4, 5, (q[0], Poly.const(heads), q[1], k[1]), dtype, bool(is_causal))
    structural = _contrib_structural(node, is_causal, heads)
    return _fused_site(MHA, index, node, structural, dtype, [], masks, prologue)


# ------------------------------------------------------------------------ com.microsoft Attention
def _contrib_attention(index: GraphIndex, node: Node, options: FusedOptions) -> AttentionSite:
    """Fused projection (input · weights + bias, split into Q | K | V) then self-attention."""
    _no_inputs(node, {4: "past", 6: "past_sequence_length"})
    _unused_outputs(index, node, {1: "present"})
    for attr, off in (("do_rotary", 0), ("past_present_share_buffer", 0)):
        _require(node.attr(attr, off) in (off, None), f"{attr} = {node.attr(attr)}")
    x = _dims(index, node.input(0), "input", (3,))
    w = _dims(index, node.input(1), "weights", (2,))
    heads = int(node.attr("num_heads", 0))
    _require(heads > 0, "num_heads missing")
    _require(w[0] == x[2], f"weights rows {w[0]} differ from the input hidden size {x[2]}")
    sizes = node.attr("qkv_hidden_sizes")
    if sizes:
        _require(len(sizes) == 3, f"qkv_hidden_sizes = {list(sizes)}")
        _require(sizes[0] == sizes[1], f"Q and K hidden sizes differ ({sizes[0]}, {sizes[1]})")
        _require(sizes[2] == sizes[0], f"V hidden size {sizes[2]} differs from Q/K's {sizes[0]} (the op needs Dv = D)")
        hidden = int(sizes[0])
        _require(
            w[1] == Poly.const(3 * hidden), f"weights columns {w[1]} are not the qkv_hidden_sizes sum {3 * hidden}"
        )
    else:
        third = w[1].exact_div(3) if w[1].is_const else None
        _require(third is not None, f"weights columns {w[1]} are not a known multiple of 3")
        assert third is not None
        hidden = int(third.value or 0)
    _require(hidden > 0 and hidden % heads == 0, f"hidden size {hidden} is not a multiple of num_heads = {heads}")
    names = [node.input(0), node.input(1), node.outputs[0]] + ([node.input(2)] if node.input(2) else [])
    dtype = _dtype(index, node, names)
    if node.input(2):
        bias = _dims(index, node.input(2), "bias", (1,))
        _require(bias[0] == Poly.const(3 * hidden), f"bias length {bias[0]} is not {3 * hidden}")
    b, s = x[0], x[1]
    h = Poly.const(hidden)
    prologue = Prologue(index.opset)
    qkv: TensorRef = prologue.one("MatMul", [node.input(0), node.input(1)], "qkv", dtype, (b, s, h * 3))
    if node.input(2):
        qkv = prologue.one("Add", [qkv, node.input(2)], "qkv_bias", dtype, (b, s, h * 3))
    q, k, v = prologue.split(qkv, 2, [hidden] * 3, "qkv_split", dtype, [(b, s, h)] * 3)
    is_causal = int(node.attr("unidirectional", 0))
    masks = contrib_masks(index, node, prologue, 3, 5, (b, Poly.const(heads), s, s), dtype, bool(is_causal))
    notes = [f"input projection emitted as MatMul{' + Add' if node.input(2) else ''} → Split into Q | K | V"]
    if is_causal:
        notes.append("unidirectional without past: Sq = Skv, causal j ≤ i")
    structural = _contrib_structural(node, is_causal, heads)
    return _fused_site(MS_ATTENTION, index, node, structural, dtype, notes, masks, prologue, (q, k, v))


# ------------------------------------------------------------------------ GroupQueryAttention
def _group_query_attention(index: GraphIndex, node: Node, options: FusedOptions) -> AttentionSite:
    _require(bool(node.input(1)) and bool(node.input(2)), "packed QKV input (key or value absent)")
    _no_inputs(
        node,
        {
            3: "past_key",
            4: "past_value",
            7: "cos_cache",
            8: "sin_cache",
            9: "position_ids",
            10: "attention_bias",
            11: "head_sink",
            12: "k_scale",
            13: "v_scale",
            14: "q_norm_weight",
            15: "k_norm_weight",
        },
    )
    _unused_outputs(index, node, {1: "present_key", 2: "present_value", 3: "output_qk"})
    for attr, off in (
        ("do_rotary", 0),
        ("local_window_size", -1),
        ("softcap", 0.0),
        ("smooth_softmax", 0),
        ("qk_output", 0),
    ):
        _require(node.attr(attr, off) in (off, None), f"{attr} = {node.attr(attr)}")
    q = _dims(index, node.input(0), "query", (3,))
    k = _dims(index, node.input(1), "key", (3,))
    v = _dims(index, node.input(2), "value", (3,))
    nq, nkv = int(node.attr("num_heads", 0)), int(node.attr("kv_num_heads", 0))
    _require(nq > 0 and nkv > 0, "num_heads/kv_num_heads missing")
    _require(k[2] * nq == q[2] * nkv, "query and key head sizes differ")
    _require(v[2] == k[2], f"value hidden {v[2]} differs from key hidden {k[2]} (the op needs Dv = D)")
    dtype = _dtype(index, node, [node.input(0), node.input(1), node.input(2), node.outputs[0]])
    notes: list[str] = []
    _check_unpadded(index, node, k[1], options, notes)
    is_causal = int(node.attr("causal", 1))
    if is_causal:
        _causal(q[1], k[1], "causal GroupQueryAttention")
    structural: dict[str, int | float | str] = {
        "scale": _scale(node),
        "is_causal": is_causal,
        "causal_alignment": TOP_LEFT,
        "q_num_heads": nq,
        "kv_num_heads": nkv,
    }
    return _fused_site(GQA, index, node, structural, dtype, notes)


def _check_unpadded(index: GraphIndex, node: Node, kv_seq: Poly, options: FusedOptions, notes: list[str]) -> None:
    """seqlens_k[b] = Skv − 1 for every b and total_sequence_length = Skv: no padding, no past."""
    seqlens, total = index.sym_value(node.input(5)), index.sym_value(node.input(6))
    proven = (
        seqlens is not None
        and len(seqlens) > 0
        and all(s == kv_seq - 1 for s in seqlens)
        and total is not None
        and len(total) == 1
        and total[0] == kv_seq
    )
    if proven:
        notes.append("seqlens_k = Skv − 1 and total_sequence_length = Skv: unpadded prompt")
        return
    if options.assume_unpadded_gqa:
        notes.append("ASSUMED unpadded prompt (seqlens_k = Skv − 1), as requested by assume_unpadded_gqa")
        return
    sources = sorted(index.graph_input_ancestors(node.input(5)) | index.graph_input_ancestors(node.input(6)))
    where = f" (from graph input(s) {', '.join(sources)})" if sources else ""
    raise Reject(
        f"seqlens_k/total_sequence_length not provably Skv − 1 / Skv{where}: padding or a past would be "
        "ignored; pass assume_unpadded_gqa to rewrite anyway"
    )
