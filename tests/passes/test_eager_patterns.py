"""Eager (HF-style) attention built with onnx.helper: MatMul → Div|Mul → [mask] → Softmax → MatMul."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from graph_passes import RewriteOptions

from .helpers import F32, attrs_of, check_rewrite, const, eager_attention, make_model, random_feeds, sage_nodes

S = 16


@pytest.mark.parametrize("scale_op", ["Div", "Mul"])
@pytest.mark.parametrize(
    "k_transpose", [(0, 2, 3, 1), (0, 2, 1, 3, "then", 0, 1, 3, 2)], ids=["one-transpose", "two-transposes"]
)
def test_bert_no_mask(ort_library, rng, scale_op, k_transpose):
    if "then" in k_transpose:
        model = _two_step_k_transpose(scale_op)
    else:
        model = eager_attention(scale_op=scale_op, k_transpose=k_transpose)
    checked = check_rewrite(model, random_feeds(model, int(rng.integers(1 << 30))), ort_library, sites=1)
    (node,) = sage_nodes(checked.model)
    a = attrs_of(node)
    assert a["layout"] == "BSNH" and a["is_causal"] == 0
    assert a["scale"] == pytest.approx(1 / np.sqrt(32), rel=1e-6)
    assert list(node.input) == ["q", "k", "v"], "BSNH inputs are fed before their transposes"
    assert not any(n.op_type == "Transpose" for n in checked.model.graph.node), "the output transpose is bypassed"


def _two_step_k_transpose(scale_op: str):
    model = eager_attention(scale_op=scale_op, k_transpose=(0, 2, 1, 3))
    g = model.graph
    kt = next(n for n in g.node if n.name == "/attn/Transpose_k")
    kt.output[0] = "k_bnsh"
    g.node.insert(3, helper.make_node("Transpose", ["k_bnsh"], ["kt"], perm=[0, 1, 3, 2], name="/attn/Transpose_kt"))
    return model


def test_bert_no_mask_bnsh_when_asked(ort_library, rng):
    model = eager_attention()
    checked = check_rewrite(
        model, random_feeds(model, 7), ort_library, sites=1, options=RewriteOptions(prefer_bsnh=False)
    )
    assert attrs_of(sage_nodes(checked.model)[0])["layout"] == "BNSH"


@pytest.mark.parametrize(
    "mask,causal",
    [
        (np.zeros((1, 1, 1, S)), 0),  # an all-attended padding mask folded to a constant
        (np.zeros((S, S)), 0),
        (np.triu(np.full((S, S), -10000.0), 1), 1),  # old-style -10000 causal mask
        (np.triu(np.full((1, 1, S, S), -np.inf), 1), 1),
        (np.triu(np.full((2, 1, S, S), np.finfo(np.float32).min), 1), 1),
    ],
    ids=["zero-padding", "zero-square", "causal-1e4", "causal-inf", "causal-min-batched"],
)
def test_constant_masks(ort_library, rng, mask, causal):
    model = eager_attention(mask=mask)
    checked = check_rewrite(model, random_feeds(model, int(rng.integers(1 << 30))), ort_library, sites=1)
    assert attrs_of(sage_nodes(checked.model)[0])["is_causal"] == causal


def test_gpt2_where_causal_bias(ort_library, rng):
    """GPT-2 eager: Where(tril bool, scores, finfo.min) before Softmax, constant after folding."""
    model = eager_attention(
        scale_op="Div", causal_where=np.tril(np.ones((1, 1, S, S), bool)), mask=np.zeros((1, 1, 1, S))
    )
    checked = check_rewrite(model, random_feeds(model, int(rng.integers(1 << 30))), ort_library, sites=1)
    assert attrs_of(sage_nodes(checked.model)[0])["is_causal"] == 1


def gpt2_sliced_bias(max_positions: int = 64, static: bool = False):
    """GPT-2's ``bias[:, :, k-q:k, :k]`` slice of a registered lower-triangular buffer, Shape-driven."""
    b, s, h, d = (2, S, 4, 16) if static else ("batch", "seq", 4, 16)
    nodes = [
        helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["v"], ["vt"], perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["qt", "kt"], ["scores"]),
        helper.make_node("Div", ["scores", "sqrt_d"], ["scaled"]),
        helper.make_node("Shape", ["qt"], ["q_len"], start=2, end=3),
        helper.make_node("Shape", ["kt"], ["k_len"], start=3, end=4),
        helper.make_node("Sub", ["k_len", "q_len"], ["start"]),
        helper.make_node("Concat", ["start", "zero"], ["starts"], axis=0),
        helper.make_node("Concat", ["k_len", "k_len"], ["ends"], axis=0),
        helper.make_node("Slice", ["bias", "starts", "ends", "axes"], ["causal"]),
        helper.make_node("Where", ["causal", "scaled", "neg"], ["biased"]),
        helper.make_node("Softmax", ["biased"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "vt"], ["ctx"]),
        helper.make_node("Transpose", ["ctx"], ["out"], perm=[0, 2, 1, 3]),
    ]
    inits = [
        const("sqrt_d", np.sqrt(d)),
        const("zero", [0], np.int64),
        const("axes", [2, 3], np.int64),
        const("bias", np.tril(np.ones((1, 1, max_positions, max_positions), bool)), bool),
        const("neg", np.finfo(np.float32).min),
    ]
    return make_model(nodes, [(n, F32, [b, s, h, d]) for n in "qkv"], [("out", F32, [b, s, h, d])], inits)


def test_gpt2_sliced_bias_static_shapes(ort_library, rng):
    model = gpt2_sliced_bias(static=True)
    checked = check_rewrite(model, random_feeds(model, int(rng.integers(1 << 30))), ort_library, sites=1)
    assert attrs_of(sage_nodes(checked.model)[0])["is_causal"] == 1


def test_gpt2_sliced_bias_dynamic_shapes_reported():
    """With symbolic lengths the slice could be clipped by the buffer size: not provable, reported."""
    from .helpers import assert_untouched

    assert_untouched(gpt2_sliced_bias(), "not provably")


def test_fp16_model(ort_library, rng):
    model = eager_attention(dtype=TensorProto.FLOAT16, mask=np.zeros((1, 1, 1, S)))
    feeds = {k: v.astype(np.float16) for k, v in random_feeds(model, int(rng.integers(1 << 30))).items()}
    checked = check_rewrite(model, feeds, ort_library, sites=1, exact_rtol=3e-3)
    assert checked.model.graph.node[0].op_type == "SageAttention"


def test_bf16_model_rewrites_with_valid_shapes():
    """bfloat16 models are rewritten the same way (ORT's CPU EP has no bf16 MatMul to compare against)."""
    from graph_passes import rewrite_model

    model = eager_attention(dtype=TensorProto.BFLOAT16)
    out, report = rewrite_model(model)
    assert len(report.rewritten) == 1 and report.shape_inference == "ok"
    assert {i.type.tensor_type.elem_type for i in out.graph.input} == {TensorProto.BFLOAT16}


def test_two_layers_and_value_info(ort_library, rng):
    """Two stacked attentions: both rewritten, in order, with value_info kept valid."""
    first = eager_attention(b=1, s=S, h=2, d=16)
    nodes = list(first.graph.node)
    second = [helper.make_node("Reshape", ["out", "bshd"], ["q2"])]
    for n in eager_attention(b=1, s=S, h=2, d=16).graph.node:
        n2 = helper.make_node(
            n.op_type,
            [x if x in ("q", "k", "v") else x + "_2" for x in n.input],
            [x + "_2" for x in n.output],
            name=n.name + "_2",
        )
        n2.attribute.extend(n.attribute)
        second.append(n2)
    for n in second[1:]:
        n.input[:] = ["q2" if x == "q" else x for x in n.input]
    inits = list(first.graph.initializer) + [const(t.name + "_2", 0) for t in ()]
    from onnx import numpy_helper

    for t in first.graph.initializer:
        inits.append(numpy_helper.from_array(numpy_helper.to_array(t), t.name + "_2"))
    inits.append(const("bshd", [1, S, 2, 16], np.int64))
    model = make_model(nodes + second, [(n, F32, [1, S, 2, 16]) for n in "qkv"], [("out_2", F32, [1, S, 32])], inits)
    checked = check_rewrite(model, random_feeds(model, int(rng.integers(1 << 30))), ort_library, sites=2)
    assert [s.index for s in checked.report.sites] == [0, 1]
