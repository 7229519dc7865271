"""Building SageAttention nodes and single-node models, and ORT sessions that have the op library loaded."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper

from . import ort_library_path
from .schema import SCHEMA

#: numpy dtype name -> ONNX element type; bfloat16 travels as float32 arrays rounded to bf16 by callers.
ONNX_TYPES = {
    "float32": TensorProto.FLOAT,
    "float16": TensorProto.FLOAT16,
    "bfloat16": TensorProto.BFLOAT16,
    "bool": TensorProto.BOOL,
    "int32": TensorProto.INT32,
    "int64": TensorProto.INT64,
}


def make_sage_node(
    inputs: Sequence[str], outputs: Sequence[str], name: str = "", **attrs: Any
) -> onnx.NodeProto:
    """A com.sageattention::SageAttention node; attributes are validated against the schema, defaults omitted."""
    validated = SCHEMA.validate(attrs)
    explicit: dict[str, Any] = {k: validated[k] for k in attrs}
    return helper.make_node(SCHEMA.name, list(inputs), list(outputs), name=name or None, domain=SCHEMA.domain, **explicit)


def custom_opset() -> onnx.OperatorSetIdProto:
    return helper.make_opsetid(SCHEMA.domain, SCHEMA.version)


def single_node_model(
    q_shape: Sequence[int | str],
    k_shape: Sequence[int | str],
    v_shape: Sequence[int | str],
    dtype: str = "float32",
    name: str = "sage",
    opset: int = 17,
    mask: tuple[Sequence[int | str], str] | None = None,
    key_lengths: tuple[Sequence[int | str], str] | None = None,
    **attrs: Any,
) -> onnx.ModelProto:
    """A model whose graph is one SageAttention node: inputs query/key/value (and attn_mask / key_lengths
    when given as (shape, dtype name)), output 'output'."""
    elem = ONNX_TYPES[dtype]
    inputs = [
        helper.make_tensor_value_info("query", elem, list(q_shape)),
        helper.make_tensor_value_info("key", elem, list(k_shape)),
        helper.make_tensor_value_info("value", elem, list(v_shape)),
    ]
    names = ["query", "key", "value", "", ""]
    for slot, (input_name, spec) in enumerate((("attn_mask", mask), ("key_lengths", key_lengths)), start=3):
        if spec is not None:
            inputs.append(helper.make_tensor_value_info(input_name, ONNX_TYPES[spec[1]], list(spec[0])))
            names[slot] = input_name
    while names[-1] == "":
        names.pop()
    graph = helper.make_graph(
        [make_sage_node(names, ["output"], name=name, **attrs)],
        "sage_attention",
        inputs,
        [helper.make_tensor_value_info("output", elem, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), custom_opset()])
    model.ir_version = 8  # readable by onnxruntime 1.20 and newer
    return model


def create_session(
    model: onnx.ModelProto | str | Path,
    providers: Sequence[str | tuple[str, dict[str, str]]] = ("CPUExecutionProvider",),
    library: Path | None = None,
    **session_config: Any,
) -> Any:
    """An onnxruntime.InferenceSession with the SageAttention library registered."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.register_custom_ops_library(str(library or ort_library_path()))
    for key, value in session_config.items():
        setattr(so, key, value)
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, so, providers=list(providers))


def to_onnx_array(x: np.ndarray, dtype: str) -> Any:
    """Input for session.run: numpy for float32/float16, an OrtValue for bfloat16 (numpy has no bf16)."""
    if dtype != "bfloat16":
        return x.astype(dtype)
    import onnxruntime as ort

    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    bits = ((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16).astype(np.uint16)  # nearest even
    return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(bits, TensorProto.BFLOAT16)


def from_onnx_output(value: Any, dtype: str) -> np.ndarray:
    """float32 numpy array of a session output (bf16 outputs are widened)."""
    arr = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
    if dtype == "bfloat16" and arr.dtype == np.uint16:
        return (arr.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return arr.astype(np.float32)
