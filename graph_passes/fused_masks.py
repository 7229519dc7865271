"""Masks of fused attention ops, turned into SageAttention's ``attn_mask`` / ``key_lengths`` inputs.

ONNX ``Attention`` (opset 23/24):

* ``attn_mask`` is bool (true = attend) or a float of Q's type added to the scaled scores, broadcast
  right-aligned to (B, Hq, Sq, Skv). A mask proven empty is dropped, one proven causal (j ≤ i) becomes
  ``is_causal`` where the alignments agree; any other is fed to ``attn_mask``, through an ``Unsqueeze`` of
  its leading axes when its rank is below 4 (the op reads a 2-D mask as (B, Skv) key padding, ONNX as
  (Sq, Skv)). Both define a fully masked row as 0 (ONNX since the onnx 1.23 errata; ORT 1.31 agrees).
* ``nonpad_kv_seqlen`` (B) is exactly the op's ``key_lengths``. With ``is_causal`` the ONNX diagonal is
  bottom-right per batch, ``j ≤ i + nonpad_kv_seqlen[b] − Sq``: the op's ``causal_alignment =
  bottom_right`` with ``key_lengths``.

com.microsoft ``MultiHeadAttention`` / ``Attention`` (``key_padding_mask`` / ``mask_index``, ``attention_bias``):

* the key-lengths form (B) goes to ``key_lengths``; the raw forms (B, Skv) and (B, Sq, Skv) (1 = attend,
  ORT tests ``> 0``) go in as the bool ``Greater(mask, 0)`` — (B, Skv) as it is, (B, Sq, Skv) unsqueezed
  to (B, 1, Sq, Skv). ORT adds ``mask_filter_value`` (−10000) to masked keys, so these are exact except
  in rows where every key is masked (ORT: softmax over uniformly shifted scores, i.e. the unmasked
  average; the op: 0). ``mask_filter_value`` must be ≤ −10⁴ for that.
* ``attention_bias`` (B|1, N|1, Sq, Skv) is additive after the scale: fed as it is. With a raw mask next
  to it (or a raw mask whose ``mask_filter_value`` is not a large negative value) the op gets
  ``bias + Where(mask > 0, 0, mask_filter_value)`` — exactly what ORT adds, fully masked rows included.
* other forms ((2B) left padding, (3B+2), 4-D Megatron masks) are rejected.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from onnx import TensorProto

from .graph_index import FLOAT_TYPES, GraphIndex, Node
from .masks import (
    MaskUnsupported,
    MaskVerdict,
    additive_mask,
    is_masked_value,
    select_mask,
)
from .sites import BOTTOM_RIGHT, TOP_LEFT, Prologue, Reject, TensorRef
from .symbolic import Poly

log = logging.getLogger(__name__)

_ONE = Poly.const(1)
_INT_TYPES = (TensorProto.INT32, TensorProto.INT64)


@dataclass
class MaskPlan:
    """What a fused op's masks become: the op's mask inputs, extra causal masking, and notes."""

    attn_mask: TensorRef | None = None
    key_lengths: TensorRef | None = None
    causal: bool = False
    alignment: str = TOP_LEFT
    notes: list[str] = field(default_factory=list)


def _shape(index: GraphIndex, name: str) -> tuple[Poly, ...] | None:
    value = index.const_value(name)
    return tuple(Poly.const(d) for d in value.shape) if value is not None else index.dims(name)


def _broadcasts(
    dims: tuple[Poly, ...], score_dims: tuple[Poly, ...], what: str, exact: tuple[str, ...] = ("Skv",)
) -> None:
    """``dims`` (rank ≤ 4, right-aligned) broadcasts to the scores; axes in ``exact`` must match exactly."""
    full = (_ONE,) * (4 - len(dims)) + tuple(dims)
    for have, want, axis in zip(full, score_dims, ("B", "Hq", "Sq", "Skv")):
        ok = have == want if axis in exact else have in (_ONE, want)
        if not ok:
            raise Reject(
                f"{what} of shape {dims} does not provably broadcast to the scores {score_dims} "
                f"({axis}: {have} vs {want}{'' if axis in exact else ' or 1'})"
            )


# --------------------------------------------------------------------------------- ONNX Attention
def onnx_attention_masks(
    index: GraphIndex, node: Node, score_dims: tuple[Poly, ...], dtype: int, is_causal: bool, prologue: Prologue
) -> MaskPlan:
    plan = MaskPlan()
    nonpad = node.input(6)
    if nonpad:
        elem = index.elem_type(nonpad)
        _require(elem in _INT_TYPES, f"nonpad_kv_seqlen has element type {elem}, not int64/int32")
        dims = _shape(index, nonpad)
        _require(
            dims is not None and len(dims) == 1 and dims[0] == score_dims[0],
            f"nonpad_kv_seqlen of shape {dims} is not provably (B) = ({score_dims[0]})",
        )
        plan.key_lengths = nonpad
        plan.notes.append(f"nonpad_kv_seqlen '{nonpad}' fed to key_lengths (padding keys excluded)")
        if is_causal:
            plan.alignment = BOTTOM_RIGHT
            plan.notes.append(
                "is_causal with nonpad_kv_seqlen: bottom-right per batch (j ≤ i + nonpad_kv_seqlen[b] − Sq), "
                "the op's causal_alignment = bottom_right with key_lengths; rows with no key left output 0 in both"
            )
    mask = node.input(3)
    if not mask:
        return plan
    elem = index.elem_type(mask)
    if elem != TensorProto.BOOL and elem not in FLOAT_TYPES:
        raise Reject(f"attn_mask '{mask}' has element type {elem}: only bool and float masks have defined semantics")
    if elem != TensorProto.BOOL and elem != dtype:
        raise Reject(f"float attn_mask '{mask}' has element type {elem}, not Q's {dtype} (the spec requires Q's type)")
    why = ""
    verdict: MaskVerdict | None = None
    try:
        verdict = _analyse(index, mask, elem == TensorProto.BOOL, score_dims)
    except MaskUnsupported as exc:
        why = str(exc)
    if verdict is not None and not verdict.causal:
        plan.notes.append(verdict.note)
        return plan
    if verdict is not None and plan.alignment == TOP_LEFT:
        plan.notes.append(verdict.note)
        plan.causal = True
        return plan
    if verdict is not None:
        why = f"{verdict.note}, but is_causal is bottom-right here (nonpad_kv_seqlen), so the mask is fed as it is"
    plan.attn_mask = _feed_onnx_mask(index, mask, elem, score_dims, dtype, why, prologue, plan.notes)
    return plan


def _analyse(index: GraphIndex, mask: str, is_bool: bool, score_dims: tuple[Poly, ...]) -> MaskVerdict:
    if is_bool:
        return select_mask(index, mask, True, float("-inf"), score_dims, 1.0)
    return additive_mask(index, mask, score_dims, 1.0)


def _feed_onnx_mask(
    index: GraphIndex,
    mask: str,
    elem: int,
    score_dims: tuple[Poly, ...],
    dtype: int,
    why: str,
    prologue: Prologue,
    notes: list[str],
) -> TensorRef:
    dims = _shape(index, mask)
    if dims is None or not 1 <= len(dims) <= 4:
        raise Reject(f"{why}; attn_mask '{mask}' has an unknown shape or a rank other than 1–4 ({dims})")
    try:
        _broadcasts(dims, score_dims, f"attn_mask '{mask}'")
    except Reject as exc:
        more = (
            " (opset 24 pads a shorter key axis with -inf; not fed)" if len(dims) and dims[-1] != score_dims[3] else ""
        )
        raise Reject(f"{why}; {exc}{more}") from exc
    feed: TensorRef = mask
    full = (_ONE,) * (4 - len(dims)) + tuple(dims)
    if len(dims) < 4:
        feed = prologue.unsqueeze(mask, list(range(4 - len(dims))), "attn_mask_4d", elem, full)
    kind = "bool" if elem == TensorProto.BOOL else "additive"
    shaped = f" through Unsqueeze to {full}" if len(dims) < 4 else ""
    notes.append(
        f"{kind} attn_mask '{mask}' {dims} fed to the op's attn_mask{shaped} (same semantics, fully masked rows 0)"
    )
    log.debug("attn_mask '%s' %s fed (%s)", mask, dims, why)
    return feed


# ------------------------------------------------------------------------------ com.microsoft ops
def contrib_masks(
    index: GraphIndex,
    node: Node,
    prologue: Prologue,
    mask_slot: int,
    bias_slot: int,
    score_dims: tuple[Poly, ...],
    dtype: int,
    causal: bool,
) -> MaskPlan:
    """``key_padding_mask``/``mask_index`` at ``mask_slot`` and ``attention_bias`` at ``bias_slot``."""
    plan = MaskPlan()
    b, _, sq, skv = score_dims
    mfv = float(node.attr("mask_filter_value", -10000.0))
    fill_masks = is_masked_value(mfv, 1.0)
    if causal and not fill_masks:
        raise Reject(
            f"mask_filter_value = {mfv} is not -inf or ≤ -1e4 with unidirectional = 1: "
            "whether ORT fills the causal positions with it is not established"
        )
    mask, bias = node.input(mask_slot), node.input(bias_slot)
    what = f"input {mask_slot} ('{mask}')"
    bias_ref: TensorRef | None = None
    if bias:
        elem = index.elem_type(bias)
        _require(elem == dtype, f"attention_bias '{bias}' has element type {elem}, not the query's {dtype}")
        dims = _shape(index, bias)
        _require(dims is not None and len(dims) == 4, f"attention_bias '{bias}' is not 4-D (shape {dims})")
        assert dims is not None
        _broadcasts(dims, score_dims, f"attention_bias '{bias}'", exact=("Sq", "Skv"))
        bias_ref = bias
    if not mask:
        if bias_ref is not None:
            plan.attn_mask = bias_ref
            plan.notes.append(f"attention_bias '{bias}' fed to attn_mask (added after the scale, as in ORT)")
        return plan
    elem = index.elem_type(mask)
    _require(elem in _INT_TYPES, f"{what} has element type {elem}, not int32")
    dims = _shape(index, mask)
    _require(dims is not None, f"shape of {what} is unknown")
    assert dims is not None
    if len(dims) == 1:
        _require(
            dims[0] == b,
            f"1-D {what} of length {dims[0]} is not provably (B) = ({b}): the (2B) left-padding and (3B+2) "
            "cumulative-length forms are not supported",
        )
        _require(fill_masks, f"mask_filter_value = {mfv} is not -inf or ≤ -1e4: padded keys are not excluded")
        plan.key_lengths = mask
        plan.notes.append(
            f"1-D {what} (key lengths) fed to key_lengths; identical except rows with no valid key "
            "(length 0: ORT averages over the uniformly shifted scores, the op outputs 0)"
        )
        if bias_ref is not None:
            plan.attn_mask = bias_ref
            plan.notes.append(f"attention_bias '{bias}' fed to attn_mask (added after the scale, as in ORT)")
        return plan
    if len(dims) == 2:
        _require(dims == (b, skv), f"2-D {what} of shape {dims} is not provably (B, Skv) = ({b}, {skv})")
    elif len(dims) == 3:
        _require(dims == (b, sq, skv), f"3-D {what} of shape {dims} is not provably (B, Sq, Skv) = ({b}, {sq}, {skv})")
    else:
        raise Reject(f"{len(dims)}-D {what} (Megatron-style (B, 1, max, max) masks are not supported)")
    _require(index.opset >= 9, f"default-domain opset {index.opset} < 9 has no integer Greater for the mask")
    keep = prologue.one(
        "Greater",
        [mask, np.asarray(0, np.int32 if elem == TensorProto.INT32 else np.int64)],
        "attn_mask",
        TensorProto.BOOL,
        dims,
    )
    if bias_ref is None and fill_masks:
        if len(dims) == 3:
            keep = prologue.unsqueeze(keep, [1], "attn_mask_4d", TensorProto.BOOL, (b, _ONE, sq, skv))
        plan.attn_mask = keep
        plan.notes.append(
            f"{len(dims)}-D raw {what} fed to attn_mask as Greater(mask, 0); identical except rows where every "
            f"key is masked (ORT adds mask_filter_value = {mfv} to all of them, i.e. the unmasked average; the op: 0)"
        )
        return plan
    keep4 = prologue.unsqueeze(
        keep,
        [1, 2] if len(dims) == 2 else [1],
        "attn_mask_4d",
        TensorProto.BOOL,
        (b, _ONE, _ONE, skv) if len(dims) == 2 else (b, _ONE, sq, skv),
    )
    fill_dims = (b, _ONE, _ONE if len(dims) == 2 else sq, skv)
    additive = prologue.one(
        "Where", [keep4, prologue.scalar(0.0, dtype), prologue.scalar(mfv, dtype)], "mask_bias", dtype, fill_dims
    )
    sources = f"{len(dims)}-D raw {what}"
    if bias_ref is not None:
        out_dims = tuple(fill if fill != _ONE else have for fill, have in zip(fill_dims, _shape(index, bias) or ()))
        additive = prologue.one("Add", [bias_ref, additive], "attn_bias", dtype, out_dims)
        sources += f" and attention_bias '{bias}'"
    plan.attn_mask = additive
    plan.notes.append(
        f"{sources} fed to attn_mask as the additive bias ORT applies "
        f"(attention_bias + Where(mask > 0, 0, {mfv})): exact, fully masked rows included"
    )
    return plan


def _require(cond: bool, reason: str) -> None:
    if not cond:
        raise Reject(reason)
