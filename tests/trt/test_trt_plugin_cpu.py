"""The TensorRT plugin on the CPU, without TensorRT: the C++ driver dlopens libsage_attention_trt.so, plays
the ONNX parser (attribute -> PluginField), builder and runtime with fakes, and checks every answer.
Here pytest runs the driver's own checks and adds schema-driven cases: every attribute value the contract
allows survives parser fields -> createPlugin -> getFieldsToSerialize -> createPlugin(kRUNTIME), and every
value outside it is refused with a message naming the attribute and its allowed values."""
from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import onnx
import pytest

from onnx_attributes import driver_args, parse_fields
from sage_export.onnx_node import make_sage_node
from sage_export.schema import SCHEMA

FIELD_TYPES = {"int": "kINT32", "float": "kFLOAT32", "string": "kCHAR"}  # what the ONNX parser produces


def test_driver_cpu_checks(run_driver):
    result = run_driver("cpu")
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-6000:]
    assert ", 0 failed" in result.stdout


def test_library_exports_only_the_entry_points(trt_library):
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) not found")
    defined = subprocess.run([nm, "-D", "--defined-only", str(trt_library)], capture_output=True, text=True, check=True)
    exported = sorted(line.split()[-1] for line in defined.stdout.splitlines() if line.strip())
    assert exported == ["getCreators", "setLoggerFinder"], exported
    undefined = subprocess.run([nm, "-DC", "--undefined-only", str(trt_library)], capture_output=True, text=True, check=True)
    assert "nvinfer1::" not in undefined.stdout, "the plugin must reach TensorRT only through its interfaces"
    needed = subprocess.run(["ldd", str(trt_library)], capture_output=True, text=True).stdout
    assert "libnvinfer" not in needed, needed


def test_fields_follow_schema(run_driver):
    result = run_driver("fields")
    assert result.returncode == 0, result.stdout
    advertised = [tuple(line.split()) for line in result.stdout.splitlines()]
    assert advertised == [(n, FIELD_TYPES[s.type]) for n, s in SCHEMA.attributes.items()]


def _allowed_cases() -> list[dict]:
    cases = [{}]
    for name, spec in SCHEMA.attributes.items():
        if spec.allowed is not None:
            cases += [{name: v} for v in spec.allowed if v != spec.default]
        elif spec.type == "int":
            cases.append({name: 8})
        else:
            cases.append({name: 0.08838834764831845})  # 1/sqrt(128): not exact in float32
    cases.append({"layout": "BSNH", "is_causal": 1, "scale": 0.125, "qk_quant": "int4", "pv_dtype": "fp16", "kernel": "sm89"})
    return cases


@pytest.mark.parametrize("attrs", _allowed_cases(), ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()) or "defaults")
def test_parser_fields_round_trip(run_driver, attrs):
    node = make_sage_node(["query", "key", "value"], ["output"], name="sage_node", **attrs)
    result = run_driver("create", *driver_args(node))
    assert result.returncode == 0, result.stdout
    serialized = parse_fields(result.stdout)
    expected = SCHEMA.validate(attrs)
    assert list(serialized) == list(SCHEMA.attributes), "serialized fields are the schema's, in its order"
    for name, value in expected.items():
        got = serialized[name]
        if SCHEMA.attributes[name].type == "float":
            assert np.float32(got) == np.float32(value), name
        else:
            assert got == str(value), name


def _outside_cases() -> list[tuple[str, object, list[str]]]:
    cases = []
    for name, spec in SCHEMA.attributes.items():
        if spec.type == "string":
            cases.append((name, "not_" + spec.default, [", ".join(f"'{v}'" for v in spec.allowed)]))
        elif spec.allowed is not None:
            cases.append((name, max(spec.allowed) + 1, [", ".join(str(v) for v in spec.allowed)]))
        else:
            cases.append((name, type(spec.default)(spec.min) - 1, [f">= {spec.min}"]))
    cases.append(("scale", math.nan, ["NaN"]))
    # An attribute of the wrong ONNX type reaches the plugin as the wrong PluginField type.
    cases.append(("layout", 1, ["kINT32", "kCHAR"]))
    cases.append(("is_causal", 1.0, ["kFLOAT32", "kINT32"]))
    return cases


@pytest.mark.parametrize("name,value,pieces", _outside_cases(), ids=lambda x: str(x) if not isinstance(x, list) else "")
def test_outside_values_refused_naming_attribute(run_driver, name, value, pieces):
    node = onnx.helper.make_node(SCHEMA.name, ["query", "key", "value"], ["output"], domain=SCHEMA.domain, **{name: value})
    result = run_driver("create", *driver_args(node))
    assert result.returncode == 2, result.stdout
    message = result.stdout
    assert f"'{name}'" in message and "node 'sage_node'" in message, message
    for piece in pieces:
        assert piece in message, message


def test_unlisted_attributes_are_dropped_like_the_parser_does(run_driver):
    node = make_sage_node(["query", "key", "value"], ["output"], is_causal=1)
    node.attribute.append(onnx.helper.make_attribute("plugin_version", "1"))
    node.attribute.append(onnx.helper.make_attribute("plugin_namespace", ""))
    result = run_driver("create", *driver_args(node))
    assert result.returncode == 0, result.stdout
    assert "plugin_version" not in result.stdout and parse_fields(result.stdout)["is_causal"] == "1"
