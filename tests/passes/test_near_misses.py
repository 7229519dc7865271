"""Attention-like graphs the pass must leave untouched, each reported with its reason."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from .helpers import F32, assert_untouched, check_rewrite, const, eager_attention, make_model, random_feeds

S = 16


def _with_node_after_scores(op: str, **attrs):
    """Insert ``op`` between the scale and the Softmax (e.g. a Tanh softcap)."""
    model = eager_attention()
    g = model.graph
    softmax = next(n for n in g.node if n.op_type == "Softmax")
    softmax.input[0] = "capped"
    idx = list(g.node).index(softmax)
    g.node.insert(idx, helper.make_node(op, ["scaled"], ["capped"], name="/attn/Extra", **attrs))
    return model


def _with_probs_output():
    model = eager_attention()
    model.graph.output.append(helper.make_tensor_value_info("probs", F32, [2, 4, S, S]))
    return model


def _batch_broadcast_k():
    model = eager_attention(b=2)
    model.graph.input[1].CopyFrom(helper.make_tensor_value_info("k", F32, [1, S, 4, 32]))
    return model


def _sliding_window() -> np.ndarray:
    i, j = np.arange(S)[:, None], np.arange(S)[None, :]
    return np.where((j <= i) & (j > i - 4), 0.0, -np.inf)


def _row_bias() -> np.ndarray:
    """(Sq, 1): one value per query row, broadcast along the keys (the op's attn_mask needs Skv there)."""
    return np.where(np.arange(S)[:, None] % 2 == 0, 0.0, -1.0)


CASES = {
    "softmax-axis": (lambda: eager_attention(softmax_axis=2), "axis"),
    "softmax-opset11-default-axis": (lambda: _opset11_default_softmax(), "axis"),
    "extra-consumer-scores": (lambda: eager_attention(extra_score_output=True), "other consumers"),
    "probs-graph-output": (_with_probs_output, "graph output"),
    "non-scalar-scale": (
        lambda: eager_attention(scale_op="Mul", score_scale=np.full((1, 4, 1, 1), 0.17)),
        "non-scalar",
    ),
    "dropout-training": (lambda: eager_attention(dropout_training=True), "Dropout"),
    "keys-broadcast-mask": (lambda: eager_attention(mask=_row_bias()), "(Skv)"),
    "value-head-dim": (lambda: eager_attention(dv=48), "Dv"),
    "softcap-tanh": (lambda: _with_node_after_scores("Tanh"), "Tanh"),
    "batch-broadcast": (_batch_broadcast_k, "batch"),
}


def _opset11_default_softmax():
    model = eager_attention(opset=11)
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    del softmax.attribute[:]  # opset < 13: default axis 1, which flattens heads×Sq×Skv
    return model


@pytest.mark.parametrize("name", list(CASES))
def test_near_miss_untouched(name):
    build, reason = CASES[name]
    report = assert_untouched(build(), reason)
    assert report.sites[0].form == "decomposed"


def test_inference_dropout_is_identity(ort_library, rng):
    """Dropout with training_mode = false is the identity: rewritten (and noted)."""
    model = eager_attention(dropout_training=False)
    checked = check_rewrite(model, random_feeds(model, int(rng.integers(1 << 30))), ort_library, sites=1)
    assert any("Dropout" in n for n in checked.report.sites[0].notes)


def test_softmax_elsewhere_is_not_a_site():
    """A classifier Softmax (no MatMul around it) is not an attention site at all."""
    nodes = [helper.make_node("Softmax", ["x"], ["y"], axis=-1)]
    model = make_model(nodes, [("x", F32, [2, 10])], [("y", F32, [2, 10])])
    from graph_passes import rewrite_model

    _, report = rewrite_model(model)
    assert report.sites == []


def test_two_dimensional_mask_is_fed_as_4d(ort_library, rng):
    """A 2-D (Sq, Skv) sliding-window mask is not empty or causal: fed through Unsqueeze to (1, 1, Sq, Skv)
    (fed as it is, the op would read it as (B, Skv) key padding)."""
    model = eager_attention(mask=_sliding_window())
    checked = check_rewrite(model, random_feeds(model, int(rng.integers(1 << 30))), ort_library, sites=1)
    assert "Unsqueeze" in [n.op_type for n in checked.model.graph.node]
    assert const  # keep helper import used
