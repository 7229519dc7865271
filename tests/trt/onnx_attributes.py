"""ONNX node attributes in the driver's typed form (int:/float:/string:name=value).

The driver then builds the PluginFieldCollection exactly as the TensorRT ONNX parser does from these typed
attributes (tests/trt/plugin_fields_builder.cpp, add_parser_fields); this module only carries each
AttributeProto's type and value across the process boundary.
"""
from __future__ import annotations

import onnx

_TYPES = {onnx.AttributeProto.INT: "int", onnx.AttributeProto.FLOAT: "float", onnx.AttributeProto.STRING: "string"}


def driver_args(node: onnx.NodeProto) -> list[str]:
    args = []
    for attr in node.attribute:
        kind = _TYPES.get(attr.type)
        if kind is None:
            raise ValueError(f"attribute {attr.name!r} has ONNX type {attr.type}, which the test driver does not model")
        value = onnx.helper.get_attribute_value(attr)
        text = value.decode() if isinstance(value, bytes) else repr(value)
        args.append(f"{kind}:{attr.name}={text}")
    return args


def parse_fields(stdout: str) -> dict[str, str]:
    """The driver's `create` output: one `name=value` line per serialized field."""
    fields = {}
    for line in stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            fields[name] = value
    return fields
