"""Every kind of bad attribute or input gives an ORT error that names the node and the problem."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from sage_export.onnx_node import create_session, custom_opset
from sage_export.schema import SCHEMA

NODE = "attn_layer_7"


def raw_model(q_shape, k_shape, v_shape, elem=TensorProto.FLOAT, k_elem=None, **attrs) -> onnx.ModelProto:
    """A single-node model that bypasses the Python-side validation, to test the C++ op's own checks."""
    node = helper.make_node(SCHEMA.name, ["query", "key", "value"], ["output"], name=NODE, domain=SCHEMA.domain, **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("query", elem, q_shape),
            helper.make_tensor_value_info("key", k_elem or elem, k_shape),
            helper.make_tensor_value_info("value", elem, v_shape),
        ],
        [helper.make_tensor_value_info("output", elem, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), custom_opset()])
    model.ir_version = 8
    return model


def run_expecting_error(model: onnx.ModelProto, feeds: dict[str, np.ndarray], *fragments: str) -> None:
    with pytest.raises(Exception) as info:
        sess = create_session(model)
        sess.run(None, feeds)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"expected {fragment!r} in the error, got: {message}"


def feeds(q_shape, k_shape, v_shape, dtype=np.float32):
    rng = np.random.default_rng(0)
    return {n: rng.standard_normal(s).astype(dtype) for n, s in (("query", q_shape), ("key", k_shape), ("value", v_shape))}


BNSH = ([1, 2, 16, 32], [1, 2, 16, 32], [1, 2, 16, 32])


@pytest.mark.parametrize(
    "attrs,fragments",
    [
        ({"qk_quant": "int3"}, ["qk_quant", "'int3'", "'int8', 'int4'"]),
        ({"qk_granularity": "per_token"}, ["qk_granularity", "'per_thread', 'per_warp', 'per_block'"]),
        ({"pv_dtype": "fp8_e5m2"}, ["pv_dtype", "'fp8_e4m3', 'fp16'"]),
        ({"pv_accum": "bf16"}, ["pv_accum", "'fp32', 'fp16'"]),
        ({"layout": "NHWC"}, ["layout", "'BNSH', 'BSNH'"]),
        ({"kernel": "sm100"}, ["kernel", "'auto', 'sm80', 'sm89', 'sm90'"]),
        ({"is_causal": 2}, ["is_causal", "allowed values: 0, 1"]),
        ({"smooth_k": -1}, ["smooth_k", "allowed values: 0, 1"]),
        ({"smooth_q": 3}, ["smooth_q", "allowed values: 0, 1"]),
        ({"scale": -0.5}, ["scale", ">= 0"]),
        ({"q_num_heads": -2}, ["q_num_heads", ">= 0"]),
    ],
)
def test_bad_attribute(ort_library, attrs, fragments):
    run_expecting_error(raw_model(*BNSH, **attrs), feeds(*BNSH), NODE, *fragments)


@pytest.mark.parametrize(
    "shapes,attrs,fragments",
    [
        (([1, 2, 16], [1, 2, 16], [1, 2, 16]), {}, ["'query'", "q_num_heads"]),
        (([2, 16], [2, 16], [2, 16]), {}, ["'query'", "rank 4", "rank 3"]),
        (([1, 2, 16, 32], [1, 2, 16], [1, 2, 16]), {}, ["same rank"]),
        (([1, 3, 16, 32], [1, 2, 16, 32], [1, 2, 16, 32]), {}, ["multiple of key/value heads", "GQA"]),
        (([1, 2, 16, 32], [1, 2, 16, 32], [1, 2, 17, 32]), {}, ["'value'", "must equal the shape of 'key'"]),
        (([1, 2, 16, 32], [1, 2, 16, 64], [1, 2, 16, 64]), {}, ["head_dim", "'query'"]),
        (([2, 2, 16, 32], [1, 2, 16, 32], [1, 2, 16, 32]), {}, ["batch"]),
        (([1, 2, 16, 32], [1, 2, 0, 32], [1, 2, 0, 32]), {}, ["sequence length must be >= 1"]),
        (([1, 16, 60], [1, 16, 60], [1, 16, 60]), {"q_num_heads": 8, "kv_num_heads": 8}, ["multiple of the head count 8"]),
        (([1, 2, 16, 32], [1, 2, 16, 32], [1, 2, 16, 32]), {"q_num_heads": 4}, ["head-count attribute", "4"]),
    ],
)
def test_bad_input(ort_library, shapes, attrs, fragments):
    run_expecting_error(raw_model(*shapes, **attrs), feeds(*shapes), NODE, *fragments)


def test_mixed_input_types_are_refused(ort_library):
    # All three inputs share T; ORT's type checker refuses the model before our kernel runs.
    model = raw_model(*BNSH, k_elem=TensorProto.FLOAT16)
    with pytest.raises(Exception, match="(?i)type"):
        create_session(model).run(None, {**feeds(*BNSH), "key": np.zeros(BNSH[1], np.float16) + 1})


def test_unsupported_type_is_refused(ort_library):
    model = raw_model(*BNSH, elem=TensorProto.DOUBLE)
    with pytest.raises(Exception, match="(?i)type|implementation"):
        create_session(model).run(None, feeds(*BNSH, dtype=np.float64))


def test_valid_model_runs_after_errors(ort_library):
    out = create_session(raw_model(*BNSH)).run(None, feeds(*BNSH))[0]
    assert out.shape == tuple(BNSH[0]) and np.isfinite(out).all()
