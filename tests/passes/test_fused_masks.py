"""Masks on fused attention ops rewritten into SageAttention's ``attn_mask`` / ``key_lengths`` inputs.

* ONNX ``Attention`` (opset 23/24): bool and float ``attn_mask`` of rank 1–4 (broadcast dims included),
  ``nonpad_kv_seqlen`` (→ ``key_lengths``), ``is_causal`` top-left without and bottom-right with
  ``nonpad_kv_seqlen``. Fully masked rows are 0 in both (ONNX ≥ 1.23 errata, ORT 1.31), so they are
  compared too. The original runs in ORT CPU where ORT supports the mask shape, else in onnx.reference.
* com.microsoft ``MultiHeadAttention`` (``key_padding_mask`` (B) / (B, Skv) / (B, Sq, Skv),
  ``attention_bias``) and ``Attention`` (fused projection, ``mask_index``, ``attention_bias``), against
  ORT CPU. ORT fills masked keys with ``mask_filter_value`` (−10000): a row whose keys are all masked is
  the unmasked average there and 0 in the op, so such rows are left out of the comparison (and checked to
  be 0 in the op) unless the mask goes in as ORT's exact additive bias.

Every rewritten model is also run through the exact float oracle (``helpers.check_rewrite``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from .helpers import (
    F32,
    assert_untouched,
    attrs_of,
    check_rewrite,
    make_model,
    run_ort,
    sage_nodes,
)

MS = ("com.microsoft", 1)
B, H, SQ, SKV, D = 2, 4, 12, 20, 32
BOOL = TensorProto.BOOL


def _producer(model: onnx.ModelProto, tensor: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if tensor in n.output)


def _sage_inputs(model: onnx.ModelProto) -> list[str]:
    (node,) = sage_nodes(model)
    return list(node.input)


# ------------------------------------------------------------------------------------ ONNX Attention
def _present_inputs(names: list[str]) -> list[str]:
    """A node's input list without its trailing absent optional inputs ("")."""
    while names and names[-1] == "":
        names = names[:-1]
    return names


def onnx_attention(
    q_shape: Sequence[int],
    kv_shape: Sequence[int],
    *,
    mask: tuple[Sequence[int], int] | None = None,
    mask_value: np.ndarray | None = None,
    nonpad: bool = False,
    opset: int = 24,
    **attrs: Any,
) -> onnx.ModelProto:
    """Attention(Q, K, V, [attn_mask], [nonpad_kv_seqlen]); the mask is a graph input or a constant."""
    inputs: list[tuple[str, int, Sequence[Any]]] = [("Q", F32, q_shape), ("K", F32, kv_shape), ("V", F32, kv_shape)]
    names = ["Q", "K", "V", "", "", "", ""]
    inits = []
    if mask is not None:
        names[3] = "attn_mask"
        if mask_value is None:
            inputs.append(("attn_mask", mask[1], mask[0]))
        else:
            inits.append(numpy_helper.from_array(mask_value, "attn_mask"))
    if nonpad:
        names[6] = "nonpad_kv_seqlen"
        inputs.append(("nonpad_kv_seqlen", TensorProto.INT64, [q_shape[0]]))
    names = _present_inputs(names)
    node = helper.make_node("Attention", names, ["Y"], name="/layers.0/attn/Attention", **attrs)
    if len(q_shape) == 4:
        y = [q_shape[0], q_shape[1], q_shape[2], kv_shape[3]]
    else:
        y = list(q_shape)
    return make_model([node], inputs, [("Y", F32, y)], inits, opset=opset)


def _qkv(seed: int, q_shape: Sequence[int], kv_shape: Sequence[int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "Q": rng.standard_normal(q_shape).astype(np.float32),
        "K": rng.standard_normal(kv_shape).astype(np.float32),
        "V": rng.standard_normal(kv_shape).astype(np.float32),
    }


def _random_mask(rng: np.random.Generator, shape: Sequence[int], elem: int) -> np.ndarray:
    """Random bool (≈70 % attended) or float (with −inf) mask with fully masked rows: query row 0 where the
    mask has a query axis, else the first batch or head."""
    if elem == BOOL:
        m = rng.random(shape) < 0.7
        masked: Any = False
    else:
        m = rng.normal(scale=2.0, size=shape).astype(np.float32)
        m[rng.random(shape) < 0.2] = -np.inf
        masked = -np.inf
    if len(shape) >= 2 and shape[-2] > 1:
        m[..., 0, :] = masked
    elif len(shape) == 4:
        axis = 0 if shape[0] > 1 else 1
        m[(slice(None),) * axis + (0,)] = masked
    return m


def _onnx_reference(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(x) for x in ReferenceEvaluator(model).run(None, feeds)]


#: (mask shape, ORT CPU runs it): ORT 1.31 requires rank 2–4 and the exact Sq; the spec broadcasts.
ONNX_MASK_SHAPES = [
    ((SQ, SKV), True),
    ((H, SQ, SKV), True),
    ((1, SQ, SKV), True),
    ((B, 1, SQ, SKV), True),
    ((B, H, SQ, SKV), True),
    ((B, 1, 1, SKV), False),
    ((1, H, 1, SKV), False),
    ((SKV,), False),
]


@pytest.mark.parametrize(
    "shape,ort_runs", ONNX_MASK_SHAPES, ids=lambda x: "x".join(map(str, x)) if isinstance(x, tuple) else None
)
@pytest.mark.parametrize("elem", [BOOL, F32], ids=["bool", "float"])
@pytest.mark.parametrize("causal", [0, 1], ids=["full", "causal"])
def test_onnx_attention_attn_mask(ort_library, rng, shape, ort_runs, elem, causal):
    q_shape, kv_shape = (B, H, SQ, D), (B, H, SKV, D)
    model = onnx_attention(q_shape, kv_shape, mask=(shape, elem), is_causal=causal)
    feeds = {**_qkv(int(rng.integers(1 << 30)), q_shape, kv_shape), "attn_mask": _random_mask(rng, shape, elem)}
    if ort_runs:
        before = run_ort(model, feeds)
    else:
        # onnx 1.23's reference reads Sq off the mask when it adds the causal bias, so it gets the mask
        # broadcast to the full score shape (the spec's semantics) rather than the broadcastable one
        full = np.broadcast_to(feeds["attn_mask"], (B, H, SQ, SKV))
        before = _onnx_reference(model, {**feeds, "attn_mask": full})
    if len(shape) >= 2 and shape[-2] > 1:
        assert np.all(before[0][..., 0, :] == 0), "fully masked rows are 0 in the original"
    checked = check_rewrite(model, feeds, ort_library, sites=1, before=before)
    a = attrs_of(sage_nodes(checked.model)[0])
    assert (a["is_causal"], a["causal_alignment"]) == (causal, "top_left")
    mask_in = _sage_inputs(checked.model)[3]
    if len(shape) < 4:
        assert _producer(checked.model, mask_in).op_type == "Unsqueeze"
    else:
        assert mask_in == "attn_mask"


def test_onnx_attention_3d_inputs_with_mask(ort_library, rng):
    q_shape, kv_shape = (B, SQ, 4 * D), (B, SKV, 2 * D)
    model = onnx_attention(q_shape, kv_shape, mask=((B, 1, SQ, SKV), F32), q_num_heads=4, kv_num_heads=2, is_causal=1)
    feeds = {
        **_qkv(int(rng.integers(1 << 30)), q_shape, kv_shape),
        "attn_mask": _random_mask(rng, (B, 1, SQ, SKV), F32),
    }
    checked = check_rewrite(model, feeds, ort_library, sites=1)
    assert _sage_inputs(checked.model)[3] == "attn_mask"


LENGTHS = [(SKV, 7), (0, 13), (SQ, SKV), (5, 1)]


@pytest.mark.parametrize("opset", [24, 25])
@pytest.mark.parametrize("lengths", LENGTHS, ids=lambda x: "-".join(map(str, x)))
@pytest.mark.parametrize("sq", [SQ, SKV], ids=["cross", "square"])
@pytest.mark.parametrize("causal", [0, 1], ids=["full", "causal"])
def test_onnx_attention_nonpad_kv_seqlen(ort_library, rng, opset, lengths, sq, causal):
    """nonpad_kv_seqlen → key_lengths; with is_causal the diagonal is bottom-right per batch."""
    q_shape, kv_shape = (B, H, sq, D), (B, 2, SKV, D)
    model = onnx_attention(q_shape, kv_shape, nonpad=True, opset=opset, is_causal=causal)
    feeds = {**_qkv(int(rng.integers(1 << 30)), q_shape, kv_shape), "nonpad_kv_seqlen": np.array(lengths, np.int64)}
    checked = check_rewrite(model, feeds, ort_library, sites=1)
    inputs = _sage_inputs(checked.model)
    assert inputs[3:] == ["", "nonpad_kv_seqlen"]
    a = attrs_of(sage_nodes(checked.model)[0])
    assert (a["is_causal"], a["causal_alignment"]) == (causal, "bottom_right" if causal else "top_left")


@pytest.mark.parametrize("elem", [BOOL, F32], ids=["bool", "float"])
def test_onnx_attention_mask_and_nonpad_causal(ort_library, rng, elem):
    """Both inputs at once, with the bottom-right diagonal: rows with no key left are 0 in both."""
    q_shape, kv_shape = (B, H, SQ, D), (B, H, SKV, D)
    shape = (B, 1, SQ, SKV)
    model = onnx_attention(q_shape, kv_shape, mask=(shape, elem), nonpad=True, is_causal=1)
    feeds = {
        **_qkv(int(rng.integers(1 << 30)), q_shape, kv_shape),
        "attn_mask": _random_mask(rng, shape, elem),
        "nonpad_kv_seqlen": np.array([SKV, 6], np.int64),
    }
    checked = check_rewrite(model, feeds, ort_library, sites=1)
    assert _sage_inputs(checked.model)[3:] == ["attn_mask", "nonpad_kv_seqlen"]
    assert attrs_of(sage_nodes(checked.model)[0])["causal_alignment"] == "bottom_right"


def test_onnx_attention_causal_constant_mask_with_nonpad(ort_library, rng):
    """A constant top-left tril mask: folded into is_causal (top-left) with key_lengths when is_causal = 0,
    fed as a mask when is_causal = 1 makes the diagonal bottom-right."""
    q_shape, kv_shape = (B, H, SQ, D), (B, H, SKV, D)
    tril = np.tril(np.ones((SQ, SKV), bool))
    lengths = np.array([SKV, 9], np.int64)
    for is_causal, folded in ((0, True), (1, False)):
        model = onnx_attention(
            q_shape, kv_shape, mask=((SQ, SKV), BOOL), mask_value=tril, nonpad=True, is_causal=is_causal
        )
        feeds = {**_qkv(int(rng.integers(1 << 30)), q_shape, kv_shape), "nonpad_kv_seqlen": lengths}
        checked = check_rewrite(model, feeds, ort_library, sites=1)
        a = attrs_of(sage_nodes(checked.model)[0])
        inputs = _sage_inputs(checked.model)
        assert a["is_causal"] == 1
        if folded:
            assert a["causal_alignment"] == "top_left" and inputs[3] == ""
        else:
            assert a["causal_alignment"] == "bottom_right" and inputs[3] != ""


@pytest.mark.parametrize(
    "build,reason",
    [
        (lambda: onnx_attention((B, H, SQ, D), (B, H, SKV, D), mask=((SQ, SKV), TensorProto.INT32)), "element type"),
        (
            lambda: onnx_attention((B, H, SQ, D), (B, H, SKV, D), mask=((SQ, SKV), TensorProto.FLOAT16)),
            "Q's",
        ),
        (lambda: onnx_attention((B, H, SQ, D), (B, H, SKV, D), mask=((SQ, SKV - 4), BOOL)), "pads a shorter key axis"),
        (lambda: onnx_attention((B, H, SQ, D), (B, H, SKV, D), mask=((B, 3, SQ, SKV), BOOL)), "Hq"),
        (lambda: onnx_attention((B, H, SQ, D), (B, H, SKV, D), nonpad=True, softcap=20.0), "softcap"),
    ],
    ids=["int-mask", "fp16-mask-fp32-q", "short-mask", "heads-mismatch", "softcap"],
)
def test_onnx_attention_mask_near_misses(build, reason):
    assert_untouched(build(), reason)


# ------------------------------------------------------------------- com.microsoft MultiHeadAttention
def mha(
    s: int = SKV,
    skv: int = SKV,
    *,
    kpm: tuple[Sequence[int], int] | None = None,
    bias: Sequence[int] | None = None,
    **attrs: Any,
) -> onnx.ModelProto:
    inputs: list[tuple[str, int, Sequence[Any]]] = [
        ("q", F32, [B, s, H * D]),
        ("k", F32, [B, skv, H * D]),
        ("v", F32, [B, skv, H * D]),
    ]
    names = ["q", "k", "v", "", "", ""]
    if kpm is not None:
        names[4] = "key_padding_mask"
        inputs.append(("key_padding_mask", kpm[1], kpm[0]))
    if bias is not None:
        names[5] = "attention_bias"
        inputs.append(("attention_bias", F32, bias))
    names = _present_inputs(names)
    node = helper.make_node(
        "MultiHeadAttention", names, ["y"], domain="com.microsoft", name="/mha", num_heads=H, **attrs
    )
    return make_model([node], inputs, [("y", F32, [B, s, H * D])], extra_opsets=[MS])


def _mha_feeds(seed: int, s: int = SKV, skv: int = SKV) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "q": rng.standard_normal((B, s, H * D)).astype(np.float32),
        "k": rng.standard_normal((B, skv, H * D)).astype(np.float32),
        "v": rng.standard_normal((B, skv, H * D)).astype(np.float32),
    }


def _raw_padding(lengths: Sequence[int], skv: int = SKV) -> np.ndarray:
    return (np.arange(skv)[None, :] < np.asarray(lengths)[:, None]).astype(np.int32)


def _skip_empty_batches(lengths: Sequence[int]) -> np.ndarray:
    """keep: batches with at least one valid key (ORT's fully masked rows are the unmasked average)."""
    return (np.asarray(lengths) > 0)[:, None, None]


@pytest.mark.parametrize("lengths", [(SKV, 9), (13, 0)], ids=["padded", "empty-batch"])
@pytest.mark.parametrize("form", ["lengths", "raw2d", "raw3d"])
@pytest.mark.parametrize("causal", [0, 1], ids=["full", "causal"])
def test_mha_key_padding_mask(ort_library, rng, lengths, form, causal):
    s = SKV if causal else SQ
    shape = {"lengths": [B], "raw2d": [B, SKV], "raw3d": [B, s, SKV]}[form]
    model = mha(s=s, kpm=(shape, TensorProto.INT32), unidirectional=causal)
    if form == "lengths":
        value = np.asarray(lengths, np.int32)
    elif form == "raw2d":
        value = _raw_padding(lengths)
        value[0, 3] = 2  # ORT attends where the mask is > 0 ...
        value[0, 5] = -1  # ... and masks where it is not
    else:
        value = np.repeat(_raw_padding(lengths)[:, None, :], s, axis=1)
        value = value * (rng.random(value.shape) < 0.8)
        value[:, :, 0] = np.asarray(lengths)[:, None] > 0  # keep a key in every row of a non-empty batch
    feeds = {**_mha_feeds(int(rng.integers(1 << 30)), s), "key_padding_mask": value}
    keep = _skip_empty_batches(lengths)
    checked = check_rewrite(model, feeds, ort_library, sites=1, keep=keep)
    inputs = _sage_inputs(checked.model)
    if form == "lengths":
        assert inputs[3:] == ["", "key_padding_mask"]
    else:
        assert len(inputs) == 4
        producer = _producer(checked.model, inputs[3])
        assert producer.op_type == ("Greater" if form == "raw2d" else "Unsqueeze")
    if 0 in lengths:  # the op's fully masked rows are 0 (ORT: the unmasked average, left out above)
        out = run_ort(checked.model, feeds, ort_library)[0]
        assert np.all(out[np.asarray(lengths) == 0] == 0)


@pytest.mark.parametrize("shape", [(1, H, SKV, SKV), (B, 1, SKV, SKV), (B, H, SKV, SKV), (1, 1, SKV, SKV)])
def test_mha_attention_bias(ort_library, rng, shape):
    model = mha(bias=shape)
    bias = rng.normal(scale=2.0, size=shape).astype(np.float32)
    feeds = {**_mha_feeds(int(rng.integers(1 << 30))), "attention_bias": bias}
    checked = check_rewrite(model, feeds, ort_library, sites=1)
    assert _sage_inputs(checked.model)[3] == "attention_bias"


@pytest.mark.parametrize("form", ["lengths", "raw2d", "raw3d"])
@pytest.mark.parametrize("lengths", [(SKV, 9), (13, 0)], ids=["padded", "empty-batch"])
def test_mha_key_padding_mask_with_attention_bias(ort_library, rng, form, lengths):
    """(B) → key_lengths + bias; raw forms → bias + Where(mask > 0, 0, -10000): exact, empty rows included."""
    shape = {"lengths": [B], "raw2d": [B, SKV], "raw3d": [B, SKV, SKV]}[form]
    model = mha(kpm=(shape, TensorProto.INT32), bias=(1, H, SKV, SKV))
    value = np.asarray(lengths, np.int32) if form == "lengths" else _raw_padding(lengths)
    if form == "raw3d":
        value = np.repeat(value[:, None, :], SKV, axis=1)
    feeds = {
        **_mha_feeds(int(rng.integers(1 << 30))),
        "key_padding_mask": value,
        "attention_bias": rng.normal(size=(1, H, SKV, SKV)).astype(np.float32),
    }
    exact = form != "lengths"
    # ORT adds the -10000 fill in float32 (ulp 1e-3 there): looser oracle tolerance in the empty batch
    checked = check_rewrite(
        model, feeds, ort_library, sites=1, keep=None if exact else _skip_empty_batches(lengths), exact_rtol=2e-3
    )
    inputs = _sage_inputs(checked.model)
    if exact:
        assert len(inputs) == 4 and _producer(checked.model, inputs[3]).op_type == "Add"
    else:
        assert inputs[3:] == ["attention_bias", "key_padding_mask"]


def test_mha_mask_filter_value_not_large_goes_in_as_bias(ort_library, rng):
    """mask_filter_value = -1 keeps masked keys in ORT's softmax: fed as the same additive bias."""
    lengths = (SKV, 6)
    model = mha(kpm=([B, SKV], TensorProto.INT32), mask_filter_value=-1.0)
    feeds = {**_mha_feeds(int(rng.integers(1 << 30))), "key_padding_mask": _raw_padding(lengths)}
    checked = check_rewrite(model, feeds, ort_library, sites=1)
    assert _producer(checked.model, _sage_inputs(checked.model)[3]).op_type == "Where"


@pytest.mark.parametrize(
    "build,reason",
    [
        (lambda: mha(kpm=([2 * B], TensorProto.INT32)), "(2B)"),
        (lambda: mha(kpm=([3 * B + 2], TensorProto.INT32)), "(3B+2)"),
        (lambda: mha(kpm=([B, 1, SKV, SKV], TensorProto.INT32)), "Megatron"),
        (lambda: mha(kpm=([B], TensorProto.INT32), mask_filter_value=-1.0), "mask_filter_value"),
        (lambda: mha(kpm=([B, SKV], TensorProto.INT32), unidirectional=1, mask_filter_value=-1.0), "unidirectional"),
        (lambda: mha(bias=(B, H, 1, SKV)), "attention_bias"),
        (lambda: mha(kpm=([B, SQ], TensorProto.INT32)), "(B, Skv)"),
    ],
    ids=["2B", "3B+2", "4d", "lengths-small-fill", "causal-small-fill", "bias-broadcast-sq", "kpm-wrong-len"],
)
def test_mha_mask_near_misses(build, reason):
    assert_untouched(build(), reason)


# ---------------------------------------------------------------------------- com.microsoft Attention
DIN = 48


def contrib_attention(
    *,
    mask: tuple[Sequence[int], int] | None = None,
    bias_shape: Sequence[int] | None = None,
    with_bias: bool = True,
    outputs: int = 1,
    seed: int = 0,
    **attrs: Any,
) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    hidden = H * D
    inits = [numpy_helper.from_array((rng.standard_normal((DIN, 3 * hidden)) * 0.3).astype(np.float32), "W")]
    if with_bias:
        inits.append(numpy_helper.from_array((rng.standard_normal(3 * hidden) * 0.1).astype(np.float32), "b"))
    inputs: list[tuple[str, int, Sequence[Any]]] = [("x", F32, [B, SKV, DIN])]
    names = ["x", "W", "b" if with_bias else "", "", "", ""]
    if mask is not None:
        names[3] = "mask_index"
        inputs.append(("mask_index", mask[1], mask[0]))
    if bias_shape is not None:
        names[5] = "attention_bias"
        inputs.append(("attention_bias", F32, bias_shape))
    names = _present_inputs(names)
    outs = ["y", "present"][:outputs]
    node = helper.make_node("Attention", names, outs, domain="com.microsoft", name="/bert/attn", num_heads=H, **attrs)
    out_info: list[tuple[str, int, Sequence[Any] | None]] = [("y", F32, [B, SKV, hidden]), ("present", F32, None)]
    return make_model([node], inputs, out_info[:outputs], inits, opset=13, extra_opsets=[MS])


def _x(seed: int) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).standard_normal((B, SKV, DIN)).astype(np.float32)}


@pytest.mark.parametrize(
    "attrs",
    [{}, {"unidirectional": 1}, {"scale": 0.1}, {"qkv_hidden_sizes": [H * D] * 3}],
    ids=["plain", "causal", "scale", "qkv-sizes"],
)
def test_contrib_attention(ort_library, rng, attrs):
    model = contrib_attention(**attrs)
    checked = check_rewrite(model, _x(int(rng.integers(1 << 30))), ort_library, sites=1)
    a = attrs_of(sage_nodes(checked.model)[0])
    assert (a["q_num_heads"], a["kv_num_heads"], a["is_causal"]) == (H, H, attrs.get("unidirectional", 0))
    ops = [n.op_type for n in checked.model.graph.node]
    assert ops.count("MatMul") == 1 and "Split" in ops and "Attention" not in ops


@pytest.mark.parametrize("form", ["lengths", "raw2d", "raw3d"])
@pytest.mark.parametrize("lengths", [(SKV, 9), (13, 0)], ids=["padded", "empty-batch"])
@pytest.mark.parametrize("causal", [0, 1], ids=["full", "causal"])
def test_contrib_attention_mask_index(ort_library, rng, form, lengths, causal):
    shape = {"lengths": [B], "raw2d": [B, SKV], "raw3d": [B, SKV, SKV]}[form]
    model = contrib_attention(mask=(shape, TensorProto.INT32), unidirectional=causal)
    value = np.asarray(lengths, np.int32) if form == "lengths" else _raw_padding(lengths)
    if form == "raw3d":
        value = np.repeat(value[:, None, :], SKV, axis=1)
    feeds = {**_x(int(rng.integers(1 << 30))), "mask_index": value}
    checked = check_rewrite(model, feeds, ort_library, sites=1, keep=_skip_empty_batches(lengths))
    inputs = _sage_inputs(checked.model)
    assert (inputs[4] == "mask_index") if form == "lengths" else (len(inputs) == 4)


def test_contrib_attention_bias_and_raw_mask(ort_library, rng):
    model = contrib_attention(mask=([B, SKV], TensorProto.INT32), bias_shape=(1, H, SKV, SKV))
    feeds = {
        **_x(int(rng.integers(1 << 30))),
        "mask_index": _raw_padding((SKV, 0)),
        "attention_bias": rng.normal(size=(1, H, SKV, SKV)).astype(np.float32),
    }
    # exact bias: the empty batch compares too (to float32 rounding of ORT's -10000 fill)
    checked = check_rewrite(model, feeds, ort_library, sites=1, exact_rtol=2e-3)
    assert _producer(checked.model, _sage_inputs(checked.model)[3]).op_type == "Add"


def test_contrib_attention_without_bias(ort_library, rng):
    """ORT's CPU kernel needs the bias input (it crashes without); compared with the float projection."""
    model = contrib_attention(with_bias=False)
    feeds = _x(int(rng.integers(1 << 30)))
    w = numpy_helper.to_array(model.graph.initializer[0])
    q, k, v = (t.reshape(B, SKV, H, D).transpose(0, 2, 1, 3) for t in np.split(feeds["x"] @ w, 3, axis=-1))
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(D)
    p = np.exp(s - s.max(-1, keepdims=True))
    y = ((p / p.sum(-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(B, SKV, H * D)
    checked = check_rewrite(model, feeds, ort_library, sites=1, before=[y.astype(np.float32)])
    assert "Add" not in [n.op_type for n in checked.model.graph.node]


@pytest.mark.parametrize(
    "build,reason",
    [
        (lambda: contrib_attention(mask=([2 * B], TensorProto.INT32)), "(2B)"),
        (lambda: contrib_attention(mask=([B, 1, SKV, SKV], TensorProto.INT32)), "Megatron"),
        (lambda: contrib_attention(outputs=2), "present"),
        (lambda: contrib_attention(do_rotary=1), "do_rotary"),
        (lambda: contrib_attention(qkv_hidden_sizes=[H * D, H * D, H * D // 2]), "Dv = D"),
        (lambda: contrib_attention(mask=([B], TensorProto.INT32), mask_filter_value=-1.0), "mask_filter_value"),
    ],
    ids=["2B", "4d", "present", "rotary", "dv", "lengths-small-fill"],
)
def test_contrib_attention_near_misses(build, reason):
    assert_untouched(build(), reason)
