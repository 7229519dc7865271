"""Masks built from ``arange`` comparisons with a symbolic sequence length (transformers ≥ 5 exports)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from .helpers import F32, assert_untouched, attrs_of, check_rewrite, const, make_model, sage_nodes


def arange_mask_attention(predicate: str, *, with_padding_input: bool = False):
    """BNSH attention whose mask is Where(predicate(kv_idx, q_idx), 0, min) with kv/q from Range(0, seq).

    ``predicate``: "causal" (kv ≤ q), "all" (kv ≥ 0), "window" (kv ≤ q and kv > q − 4), "offset" (kv ≤ q + 1).
    """
    nodes = [
        helper.make_node("Shape", ["q"], ["seq_1d"], start=2, end=3),
        helper.make_node("Squeeze", ["seq_1d"], ["seq"]),
        helper.make_node("Range", ["zero", "seq", "one"], ["idx"]),
        helper.make_node("Unsqueeze", ["idx", "axes01"], ["idx_11s"]),
        helper.make_node("Unsqueeze", ["idx_11s", "axis2"], ["kv_idx"]),  # (1, 1, 1, S): key index j
        helper.make_node("Unsqueeze", ["idx_11s", "axis3"], ["q_idx"]),  # (1, 1, S, 1): query index i
    ]
    if predicate == "causal":
        nodes.append(helper.make_node("LessOrEqual", ["kv_idx", "q_idx"], ["cond0"]))
    elif predicate == "all":
        nodes.append(helper.make_node("GreaterOrEqual", ["kv_idx", "zero"], ["cond_small"]))
        nodes.append(helper.make_node("Expand", ["cond_small", "full_shape"], ["cond0"]))
    elif predicate == "window":
        nodes += [
            helper.make_node("LessOrEqual", ["kv_idx", "q_idx"], ["le"]),
            helper.make_node("Sub", ["q_idx", "four"], ["q_minus"]),
            helper.make_node("Greater", ["kv_idx", "q_minus"], ["gt"]),
            helper.make_node("And", ["le", "gt"], ["cond0"]),
        ]
    elif predicate == "offset":
        nodes += [
            helper.make_node("Add", ["q_idx", "one"], ["q_plus"]),
            helper.make_node("LessOrEqual", ["kv_idx", "q_plus"], ["cond0"]),
        ]
    cond = "cond0"
    inputs = [(n, F32, ["batch", 2, "seq", 16]) for n in "qkv"]
    if with_padding_input:
        inputs.append(("attention_mask", TensorProto.BOOL, ["batch", "seq"]))
        nodes += [
            helper.make_node("Unsqueeze", ["attention_mask", "axes12"], ["pad"]),
            helper.make_node("And", ["cond0", "pad"], ["cond1"]),
        ]
        cond = "cond1"
    nodes += [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"]),
        helper.make_node("Mul", ["scores", "scale"], ["scaled"]),
        helper.make_node("Where", [cond, "zero_f", "neg"], ["mask"]),
        helper.make_node("Add", ["scaled", "mask"], ["masked"]),
        helper.make_node("Softmax", ["masked"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "v"], ["out"]),
    ]
    inits = [
        const("zero", 0, np.int64),
        const("one", 1, np.int64),
        const("four", 4, np.int64),
        const("axes01", [0, 1], np.int64),
        const("axes12", [1, 2], np.int64),
        const("axis2", [2], np.int64),
        const("axis3", [3], np.int64),
        const("scale", 0.25),
        const("zero_f", 0.0),
        const("neg", np.finfo(np.float32).min),
    ]
    if predicate == "all":
        nodes.insert(0, helper.make_node("Concat", ["ones2", "seq_1d", "seq_1d"], ["full_shape"], axis=0))
        inits.append(const("ones2", [1, 1], np.int64))
    return make_model(nodes, inputs, [("out", F32, ["batch", 2, "seq", 16])], inits, opset=18)


def _feeds(seq: int, seed: int, padding: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {n: rng.standard_normal((2, 2, seq, 16)).astype(np.float32) for n in "qkv"}
    if padding:
        feeds["attention_mask"] = np.ones((2, seq), bool)
    return feeds


@pytest.mark.parametrize("predicate,causal", [("causal", 1), ("all", 0)])
@pytest.mark.parametrize("seq", [7, 33])
def test_arange_masks_are_proven(ort_library, predicate, causal, seq):
    model = arange_mask_attention(predicate)
    checked = check_rewrite(model, _feeds(seq, seq), ort_library, sites=1)
    assert attrs_of(sage_nodes(checked.model)[0])["is_causal"] == causal
    assert any("masks nothing" in n or "causal" in n for n in checked.report.sites[0].notes)


@pytest.mark.parametrize("predicate", ["window", "offset"])
def test_arange_other_patterns_are_fed_as_masks(ort_library, predicate):
    """Neither empty nor causal: the Where(cond, 0, min) bias goes to attn_mask as an additive mask."""
    model = arange_mask_attention(predicate)
    checked = check_rewrite(model, _feeds(19, 3), ort_library, sites=1)
    node = sage_nodes(checked.model)[0]
    assert len(node.input) == 4 and attrs_of(node).get("is_causal", 0) == 0


def test_arange_mask_with_padding_input_is_fed(ort_library):
    model = arange_mask_attention("causal", with_padding_input=True)
    feeds = _feeds(13, 5, padding=True)
    feeds["attention_mask"][1, 9:] = False
    checked = check_rewrite(model, feeds, ort_library, sites=1)
    assert any("attn_mask" in n for n in checked.report.sites[0].notes)
