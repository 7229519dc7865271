"""ONNX Attention (opset 23/24) and com.microsoft MultiHeadAttention / GroupQueryAttention → SageAttention."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from graph_passes import RewriteOptions

from .helpers import F32, assert_untouched, attrs_of, check_rewrite, const, make_model, random_feeds, sage_nodes

MS = ("com.microsoft", 1)


def onnx_attention(
    q_shape, k_shape, v_shape, opset=23, mask=None, mask_dtype=TensorProto.BOOL, extra_inputs=(), outputs=1, **attrs
):
    inputs = [("Q", F32, q_shape), ("K", F32, k_shape), ("V", F32, v_shape)]
    names = ["Q", "K", "V"]
    inits = []
    if mask is not None:
        if isinstance(mask, str):
            inputs.append((mask, mask_dtype, [q_shape[-2], k_shape[-2]]))
            names.append(mask)
        else:
            inits.append(const("mask", mask, bool if mask_dtype == TensorProto.BOOL else np.float32))
            names.append("mask")
    for name, elem, shape in extra_inputs:
        while len(names) < 4:
            names.append("")
        inputs.append((name, elem, shape))
        names.append(name)
    outs = ["Y", "present_key", "present_value", "qk"][:outputs]
    node = helper.make_node("Attention", names, outs, name="/layers.0/attn/Attention", **attrs)
    if len(q_shape) == 4:
        y_shape = [q_shape[0], q_shape[1], q_shape[2], v_shape[3]]
    else:
        y_shape = [q_shape[0], q_shape[1], q_shape[2] // k_shape[2] * v_shape[2]]
    shapes = [y_shape, [None] * 4, [None] * 4, [None] * 4]
    return make_model([node], inputs, [(o, F32, sh) for o, sh in zip(outs, shapes)], inits, opset=opset)


@pytest.mark.parametrize("opset", [23, 24])
@pytest.mark.parametrize(
    "q,kv,attrs",
    [
        ((2, 4, 24, 32), (2, 4, 24, 32), {}),
        ((2, 4, 24, 32), (2, 4, 24, 32), {"is_causal": 1}),
        ((1, 8, 40, 64), (1, 2, 40, 64), {"is_causal": 1}),  # GQA
        ((2, 4, 16, 32), (2, 4, 48, 32), {"scale": 0.3}),  # cross attention, explicit scale
        ((1, 4, 12, 32), (1, 4, 20, 32), {"is_causal": 1}),  # no cache: causal is top-left for Sq != Skv
        ((2, 24, 4 * 32), (2, 24, 2 * 32), {"q_num_heads": 4, "kv_num_heads": 2, "is_causal": 1}),  # 3-D
    ],
)
def test_onnx_attention(ort_library, rng, opset, q, kv, attrs):
    model = onnx_attention(q, kv, kv, opset=opset, **attrs)
    checked = check_rewrite(model, random_feeds(model, int(rng.integers(1 << 30))), ort_library, sites=1)
    (node,) = sage_nodes(checked.model)
    a = attrs_of(node)
    assert a["is_causal"] == attrs.get("is_causal", 0) and a["causal_alignment"] == "top_left"
    assert a["scale"] == pytest.approx(attrs.get("scale", 0.0))
    if len(q) == 3:
        assert (a["q_num_heads"], a["kv_num_heads"]) == (attrs["q_num_heads"], attrs["kv_num_heads"])
    else:
        assert a["layout"] == "BNSH"


def test_onnx_attention_with_provable_masks(ort_library, rng):
    s = 20
    all_true = onnx_attention((1, 2, s, 32), (1, 2, s, 32), (1, 2, s, 32), mask=np.ones((s, s), bool))
    checked = check_rewrite(all_true, random_feeds(all_true, 1), ort_library, sites=1)
    assert attrs_of(sage_nodes(checked.model)[0])["is_causal"] == 0
    tril = onnx_attention((1, 2, s, 32), (1, 2, s, 32), (1, 2, s, 32), mask=np.tril(np.ones((s, s), bool)))
    checked = check_rewrite(tril, random_feeds(tril, 2), ort_library, sites=1)
    assert attrs_of(sage_nodes(checked.model)[0])["is_causal"] == 1
    float_zero = onnx_attention(
        (1, 2, s, 32), (1, 2, s, 32), (1, 2, s, 32), mask=np.zeros((1, 1, s, s)), mask_dtype=F32
    )
    check_rewrite(float_zero, random_feeds(float_zero, 3), ort_library, sites=1)


@pytest.mark.parametrize(
    "build,reason",
    [
        (lambda: onnx_attention((1, 2, 8, 16), (1, 2, 8, 16), (1, 2, 8, 16), softcap=30.0), "softcap"),
        (lambda: onnx_attention((1, 2, 8, 16), (1, 2, 8, 16), (1, 2, 8, 16), outputs=4), "present_key is used"),
        (lambda: onnx_attention((1, 2, 8, 16), (1, 2, 8, 16), (1, 2, 8, 24)), "Dv"),
        (
            lambda: onnx_attention(
                (1, 2, 8, 16),
                (1, 2, 8, 16),
                (1, 2, 8, 16),
                extra_inputs=[("past_key", F32, [1, 2, 4, 16]), ("past_value", F32, [1, 2, 4, 16])],
            ),
            "past_key",
        ),
    ],
    ids=["softcap", "qk-output", "dv", "past"],
)
def test_onnx_attention_untouched(build, reason):
    """Masks (padding, general) are rewritten now: tests/passes/test_fused_masks.py."""
    assert_untouched(build(), reason)


def test_onnx_attention_general_constant_mask(ort_library, rng):
    """A constant mask that is neither empty nor causal is fed to attn_mask (through Unsqueeze: it is 2-D)."""
    model = onnx_attention((1, 2, 8, 16), (1, 2, 8, 16), (1, 2, 8, 16), mask=np.triu(np.ones((8, 8), bool)))
    checked = check_rewrite(model, random_feeds(model, int(rng.integers(1 << 30))), ort_library, sites=1)
    assert any("fed to the op's attn_mask" in n for n in checked.report.sites[0].notes)


# ------------------------------------------------------------------------------ com.microsoft ops
def mha(b=2, s=24, skv=24, heads=4, d=32, **attrs):
    node = helper.make_node(
        "MultiHeadAttention", ["q", "k", "v"], ["y"], domain="com.microsoft", name="/mha", num_heads=heads, **attrs
    )
    return make_model(
        [node],
        [("q", F32, [b, s, heads * d]), ("k", F32, [b, skv, heads * d]), ("v", F32, [b, skv, heads * d])],
        [("y", F32, [b, s, heads * d])],
        extra_opsets=[MS],
    )


@pytest.mark.parametrize("attrs", [{}, {"unidirectional": 1}, {"scale": 0.2}], ids=["plain", "causal", "scale"])
def test_multi_head_attention(ort_library, rng, attrs):
    model = mha(**attrs)
    checked = check_rewrite(model, random_feeds(model, int(rng.integers(1 << 30))), ort_library, sites=1)
    a = attrs_of(sage_nodes(checked.model)[0])
    assert (a["q_num_heads"], a["kv_num_heads"], a["is_causal"]) == (4, 4, attrs.get("unidirectional", 0))


def test_multi_head_attention_causal_cross_untouched():
    """ORT's unidirectional MultiHeadAttention with Sq != Skv is neither top-left nor bottom-right: not mapped."""
    assert_untouched(mha(s=8, skv=12, unidirectional=1), "Sq = 8, Skv = 12")


def test_multi_head_attention_with_projection_bias_untouched():
    """The projection bias (input 3) is not folded; masks are rewritten (tests/passes/test_fused_masks.py)."""
    model = mha()
    node = model.graph.node[0]
    node.input.append("qkv_bias")
    model.graph.input.append(helper.make_tensor_value_info("qkv_bias", F32, [3 * 4 * 32]))
    assert_untouched(model, "bias")


def gqa(b=1, s=20, nq=8, nkv=2, d=32, seqlens=None, **attrs):
    inputs = [("q", F32, [b, s, nq * d]), ("k", F32, [b, s, nkv * d]), ("v", F32, [b, s, nkv * d])]
    inits = []
    if seqlens is None:
        inits += [const("seqlens_k", [s - 1] * b, np.int32), const("total", s, np.int32)]
    else:
        inputs += [("seqlens_k", TensorProto.INT32, [b]), ("total", TensorProto.INT32, [])]
    node = helper.make_node(
        "GroupQueryAttention",
        ["q", "k", "v", "", "", "seqlens_k", "total"],
        ["y"],
        domain="com.microsoft",
        name="/gqa",
        num_heads=nq,
        kv_num_heads=nkv,
        **attrs,
    )
    return make_model([node], inputs, [("y", F32, [b, s, nq * d])], inits, extra_opsets=[MS])


def test_group_query_attention_prompt(ort_library, rng):
    model = gqa()
    checked = check_rewrite(model, random_feeds(model, int(rng.integers(1 << 30))), ort_library, sites=1)
    a = attrs_of(sage_nodes(checked.model)[0])
    assert (a["q_num_heads"], a["kv_num_heads"], a["is_causal"]) == (8, 2, 1)


def test_group_query_attention_runtime_seqlens(ort_library):
    model = gqa(seqlens="input")
    assert_untouched(model, "seqlens_k")
    feeds = random_feeds(model, 5)
    feeds["seqlens_k"] = np.array([19], np.int32)
    feeds["total"] = np.array(20, np.int32)
    checked = check_rewrite(model, feeds, ort_library, sites=1, options=RewriteOptions(assume_unpadded_gqa=True))
    assert any("ASSUMED" in n for n in checked.report.sites[0].notes)


@pytest.mark.parametrize(
    "attrs,reason",
    [({"do_rotary": 1}, "do_rotary"), ({"local_window_size": 8}, "local_window_size"), ({"softcap": 50.0}, "softcap")],
)
def test_group_query_attention_untouched(attrs, reason):
    assert_untouched(gqa(**attrs), reason)
