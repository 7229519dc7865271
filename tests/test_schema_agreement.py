"""The C++ op (whose attribute parser is generated from sage_attention.toml) agrees with the Python view of
the same schema: every allowed value is accepted, the first value outside is refused with the allowed list,
and the defaults mean the same thing on both sides."""
from __future__ import annotations

import numpy as np
import pytest

from op_runner import run_sage
from sage_export.onnx_node import create_session
from sage_export.schema import SCHEMA
from test_ort_errors import BNSH, feeds, raw_model

SHAPE_ATTRS = {"layout", "q_num_heads", "kv_num_heads"}  # change how inputs are read, tested elsewhere


def outside_value(spec):
    if spec.type == "string":
        return "not_" + str(spec.default)
    if spec.allowed is not None:
        return max(spec.allowed) + 1
    return type(spec.default)(spec.min) - 1


@pytest.mark.parametrize("name", sorted(SCHEMA.attributes))
def test_allowed_values_accepted_and_outside_refused(ort_library, name):
    spec = SCHEMA.attributes[name]
    accepted = list(spec.allowed) if spec.allowed is not None else [spec.default]
    f = feeds(*BNSH)
    for value in accepted:
        if name in SHAPE_ATTRS and value != spec.default:
            continue
        out = create_session(raw_model(*BNSH, **{name: value})).run(None, f)[0]
        assert np.isfinite(out).all(), f"{name}={value!r}"
    with pytest.raises(Exception, match=name):
        create_session(raw_model(*BNSH, **{name: outside_value(spec)})).run(None, f)


def test_explicit_defaults_equal_omitted_attributes(ort_library, rng):
    q, k, v = (rng.standard_normal((1, 2, 90, 64)).astype(np.float32) for _ in range(3))
    implicit = run_sage(q, k, v)
    explicit = run_sage(q, k, v, **SCHEMA.defaults())
    np.testing.assert_array_equal(implicit, explicit)


def test_python_validation_matches_schema():
    with pytest.raises(ValueError, match="qk_quant"):
        SCHEMA.validate({"qk_quant": "int2"})
    with pytest.raises(ValueError, match="unknown"):
        SCHEMA.validate({"qk_quantization": "int8"})
    assert SCHEMA.validate({})["pv_dtype"] == "fp8_e4m3"


def test_anonymous_dynamic_dims_do_not_leak_as_minus_one(ort_library):
    # Unknown, unnamed query dims must not come out of shape inference as a literal -1 that ORT would then
    # use as a size (Shape folding, MatMul checks) — a regression from a real exported model.
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((384, 4), np.float32), "w")
    shape = numpy_helper.from_array(np.array([1, 8, -1], np.int64), "shape")
    nodes = [
        helper.make_node(SCHEMA.name, ["q", "q", "q"], ["o"], domain=SCHEMA.domain, layout="BSNH"),
        helper.make_node("Reshape", ["o", "shape"], ["r"]),
        helper.make_node("MatMul", ["r", "w"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, 8, None, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, shape],
    )  # fmt: skip
    from sage_export.onnx_node import custom_opset

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), custom_opset()])
    model.ir_version = 8
    x = np.random.default_rng(0).standard_normal((1, 8, 12, 32)).astype(np.float32)
    assert create_session(model).run(None, {"q": x})[0].shape == (1, 8, 4)
