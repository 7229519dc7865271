"""Padding and general masks fed to the op's ``attn_mask`` input: rewritten with the original's semantics.

Each synthetic graph is rewritten and compared with the original model in ORT CPU (int8 Q·Kᵀ, fp16 P̃·V,
cos ≥ 0.999) and with an exact float oracle; near-misses stay untouched with their reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from .helpers import F32, assert_untouched, check_rewrite, const, make_model, sage_nodes

B, H, S, D = 3, 4, 20, 32
LENGTHS = (20, 13, 6)


def _attention(
    mask_nodes: Sequence[onnx.NodeProto],
    score_nodes: Sequence[onnx.NodeProto],
    last: str,
    mask_inputs,
    inits=(),
) -> onnx.ModelProto:  # type: ignore[no-untyped-def]
    """BNSH attention: MatMul(q, kᵀ) → Div √D = 'scaled' → ``score_nodes`` (ending in ``last``) → Softmax → ·V."""
    nodes = [
        *mask_nodes,
        helper.make_node(
            "Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2], name="/attn/Transpose_k"
        ),
        helper.make_node("MatMul", ["q", "kt"], ["scores"], name="/attn/MatMul"),
        helper.make_node("Div", ["scores", "sqrt_d"], ["scaled"], name="/attn/Div"),
        *score_nodes,
        helper.make_node("Softmax", [last], ["probs"], axis=-1, name="/attn/Softmax"),
        helper.make_node("MatMul", ["probs", "v"], ["out"], name="/attn/MatMul_1"),
    ]
    inputs = [(n, F32, [B, H, S, D]) for n in "qkv"] + list(mask_inputs)
    all_inits = [const("sqrt_d", np.sqrt(D)), *inits]
    return make_model(nodes, inputs, [("out", F32, [B, H, S, D])], all_inits, opset=17)


def _qkv(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal((B, H, S, D)).astype(np.float32) for n in "qkv"}


def _padding(dtype=np.int64) -> np.ndarray:  # type: ignore[no-untyped-def]
    return (np.arange(S)[None, :] < np.array(LENGTHS)[:, None]).astype(dtype)


def _bert_extended(masked_value: float, reshape: bool = False) -> onnx.ModelProto:
    """HF BERT: (1 − Cast(Unsqueeze(Unsqueeze(mask)))) · masked_value added to the scaled scores."""
    if reshape:
        shape_nodes = [
            helper.make_node(
                "Reshape", ["attention_mask", "b11s"], ["m4"], name="/ext/Reshape"
            )
        ]
    else:
        shape_nodes = [
            helper.make_node(
                "Unsqueeze", ["attention_mask", "ax1"], ["m3"], name="/ext/Unsqueeze"
            ),
            helper.make_node(
                "Unsqueeze", ["m3", "ax2"], ["m4"], name="/ext/Unsqueeze_1"
            ),
        ]
    mask_nodes = [
        *shape_nodes,
        helper.make_node(
            "Cast", ["m4"], ["mf"], to=TensorProto.FLOAT, name="/ext/Cast"
        ),
        helper.make_node("Sub", ["one", "mf"], ["inv"], name="/ext/Sub"),
        helper.make_node("Mul", ["inv", "neg"], ["ext"], name="/ext/Mul"),
    ]
    inits = [
        const("ax1", [1], np.int64),
        const("ax2", [2], np.int64),
        const("b11s", [B, 1, 1, S], np.int64),
        const("one", 1.0),
        const("neg", masked_value),
    ]
    score = [helper.make_node("Add", ["scaled", "ext"], ["masked"], name="/attn/Add")]
    return _attention(
        mask_nodes,
        score,
        "masked",
        [("attention_mask", TensorProto.INT64, [B, S])],
        inits,
    )


@pytest.mark.parametrize(
    "masked_value,reshape",
    [(-10000.0, False), (float(np.finfo(np.float32).min), False), (-10000.0, True)],
    ids=["minus-10000", "float-min", "reshape"],
)
def test_bert_extended_padding_mask(ort_library, masked_value, reshape):
    model = _bert_extended(masked_value, reshape)
    feeds = {**_qkv(1), "attention_mask": _padding()}
    checked = check_rewrite(model, feeds, ort_library, sites=1)
    node = sage_nodes(checked.model)[0]
    assert len(node.input) == 4 and node.input[3] == "ext"
    assert any("attn_mask" in n for n in checked.report.sites[0].notes)


def test_where_bool_key_padding(ort_library):
    """Where(mask (B,1,1,S), scores, min): the bool goes to attn_mask as it is."""
    mask_nodes = [
        helper.make_node(
            "Reshape", ["attention_mask", "b11s"], ["keep"], name="/m/Reshape"
        )
    ]
    score = [
        helper.make_node(
            "Where", ["keep", "scaled", "neg"], ["masked"], name="/attn/Where"
        )
    ]
    inits = [
        const("b11s", [B, 1, 1, S], np.int64),
        const("neg", np.finfo(np.float32).min),
    ]
    model = _attention(
        mask_nodes,
        score,
        "masked",
        [("attention_mask", TensorProto.BOOL, [B, S])],
        inits,
    )
    feeds = {**_qkv(2), "attention_mask": _padding(bool)}
    checked = check_rewrite(model, feeds, ort_library, sites=1)
    assert sage_nodes(checked.model)[0].input[3] == "keep"


def test_where_negated_condition(ort_library):
    """Where(pad (true = masked), -inf, scores): fed through Not."""
    mask_nodes = [
        helper.make_node(
            "Reshape", ["attention_mask", "b11s"], ["keep"], name="/m/Reshape"
        ),
        helper.make_node("Not", ["keep"], ["pad"], name="/m/Not"),
    ]
    score = [
        helper.make_node(
            "Where", ["pad", "neg", "scaled"], ["masked"], name="/attn/Where"
        )
    ]
    inits = [const("b11s", [B, 1, 1, S], np.int64), const("neg", -np.inf)]
    model = _attention(
        mask_nodes,
        score,
        "masked",
        [("attention_mask", TensorProto.BOOL, [B, S])],
        inits,
    )
    feeds = {**_qkv(3), "attention_mask": _padding(bool)}
    checked = check_rewrite(model, feeds, ort_library, sites=1)
    assert any(
        n.op_type == "Not" and n.input[0] == "pad" for n in checked.model.graph.node
    )


def test_add_of_where_bool_bias_general_mask(ort_library):
    """Add(scores, Where(mask (B,1,S,S), 0, -inf)): a per-query pattern (no fully-masked row)."""
    score = [
        helper.make_node(
            "Where", ["allowed", "zero", "ninf"], ["bias"], name="/m/Where"
        ),
        helper.make_node("Add", ["scaled", "bias"], ["masked"], name="/attn/Add"),
    ]
    inits = [const("zero", 0.0), const("ninf", -np.inf)]
    model = _attention(
        [], score, "masked", [("allowed", TensorProto.BOOL, [B, 1, S, S])], inits
    )
    rng = np.random.default_rng(4)
    allowed = rng.random((B, 1, S, S)) < 0.6
    allowed[:, :, np.arange(S), np.arange(S)] = True
    check_rewrite(model, {**_qkv(4), "allowed": allowed}, ort_library, sites=1)


def test_generic_additive_bias(ort_library):
    """A float (B, H, S, S) bias (ALiBi-like, any values) added after the scale: fed as additive."""
    score = [helper.make_node("Add", ["scaled", "bias"], ["masked"], name="/attn/Add")]
    model = _attention([], score, "masked", [("bias", F32, [B, H, S, S])])
    bias = (
        np.random.default_rng(5).normal(scale=2.0, size=(B, H, S, S)).astype(np.float32)
    )
    check_rewrite(model, {**_qkv(5), "bias": bias}, ort_library, sites=1)


# ----------------------------------------------------------------------------------- near-misses
def test_mask_added_before_the_scale_is_untouched():
    """Add(QKᵀ, M) then Div √D: the op would need M/scale."""
    nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"]),
        helper.make_node("Add", ["scores", "bias"], ["biased"]),
        helper.make_node("Div", ["biased", "sqrt_d"], ["scaled"]),
        helper.make_node("Softmax", ["scaled"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "v"], ["out"]),
    ]
    inputs = [(n, F32, [B, H, S, D]) for n in "qkv"] + [("bias", F32, [B, 1, 1, S])]
    model = make_model(
        nodes, inputs, [("out", F32, [B, H, S, D])], [const("sqrt_d", np.sqrt(D))]
    )
    assert_untouched(model, "M/scale")


@pytest.mark.parametrize("shape", [[S, S], [1, S, S], [H, S, S], [S]], ids=["rank2", "rank3", "rank3-heads", "rank1"])
def test_low_rank_additive_mask(ort_library, shape):
    """A rank 1–3 mask broadcasts right-aligned against the scores: fed through an Unsqueeze to 4-D
    (fed as it is, the op would read a 2-D mask as (B, Skv) key padding)."""
    score = [helper.make_node("Add", ["scaled", "bias"], ["masked"], name="/attn/Add")]
    model = _attention([], score, "masked", [("bias", F32, shape)])
    bias = np.random.default_rng(6).normal(scale=2.0, size=shape).astype(np.float32)
    checked = check_rewrite(model, {**_qkv(6), "bias": bias}, ort_library, sites=1)
    mask_in = sage_nodes(checked.model)[0].input[3]
    assert next(n for n in checked.model.graph.node if mask_in in n.output).op_type == "Unsqueeze"


def test_low_rank_negated_bool_mask(ort_library):
    """Where(pad (S, S), -inf, scores): Not, then Unsqueeze to (1, 1, S, S)."""
    score = [helper.make_node("Where", ["pad", "neg", "scaled"], ["masked"], name="/attn/Where")]
    model = _attention([], score, "masked", [("pad", TensorProto.BOOL, [S, S])], [const("neg", -np.inf)])
    pad = np.random.default_rng(7).random((S, S)) < 0.3
    pad[np.arange(S), np.arange(S)] = False
    checked = check_rewrite(model, {**_qkv(7), "pad": pad}, ort_library, sites=1)
    ops = [n.op_type for n in checked.model.graph.node]
    assert "Not" in ops and "Unsqueeze" in ops


@pytest.mark.parametrize(
    "shape,reason",
    [([B, 1, 1, 1], "broadcast"), ([1], "(Skv)")],
    ids=["skv-broadcast", "rank1-skv-broadcast"],
)
def test_additive_near_misses(shape, reason):
    score = [helper.make_node("Add", ["scaled", "bias"], ["masked"], name="/attn/Add")]
    model = _attention([], score, "masked", [("bias", F32, shape)])
    assert_untouched(model, reason)


def test_where_with_a_finite_fill_is_untouched():
    score = [
        helper.make_node(
            "Where", ["keep", "scaled", "fill"], ["masked"], name="/attn/Where"
        )
    ]
    model = _attention(
        [],
        score,
        "masked",
        [("keep", TensorProto.BOOL, [B, 1, 1, S])],
        [const("fill", -5.0)],
    )
    assert_untouched(model, "-5.0")
