"""samples/tensorrt/compact_inputs.py (no TensorRT needed): SageAttention nodes lose their empty optional-input
names, so the plugin sees only present inputs (it tells attn_mask and key_lengths apart by type)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import onnx
import pytest

from sage_export.onnx_node import single_node_model

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "tensorrt" / "compact_inputs.py"


@pytest.fixture(scope="module")
def compact():
    spec = importlib.util.spec_from_file_location("compact_inputs", SAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compact_sage_inputs


def _model(mask: bool, lengths: bool) -> onnx.ModelProto:
    return single_node_model(
        ["b", 4, "s", 64], ["b", 4, "s", 64], ["b", 4, "s", 64], dtype="float16", name="sage_0",
        mask=(["b", "s"], "bool") if mask else None, key_lengths=(["b"], "int64") if lengths else None,
    )  # fmt: skip


@pytest.mark.parametrize(
    "mask,lengths,before,after",
    [
        (False, True, ["query", "key", "value", "", "key_lengths"], ["query", "key", "value", "key_lengths"]),
        (True, False, ["query", "key", "value", "attn_mask"], ["query", "key", "value", "attn_mask"]),
        (True, True, ["query", "key", "value", "attn_mask", "key_lengths"], ["query", "key", "value", "attn_mask", "key_lengths"]),
        (False, False, ["query", "key", "value"], ["query", "key", "value"]),
    ],
)
def test_empty_optional_inputs_dropped(compact, mask, lengths, before, after):
    model = _model(mask, lengths)
    assert list(model.graph.node[0].input) == before
    changed = compact(model)
    assert list(model.graph.node[0].input) == after
    assert changed == (["sage_0"] if "" in before else [])


def test_other_ops_and_trailing_placeholders(compact):
    model = _model(True, False)
    node = model.graph.node[0]
    node.input.append("")  # a trailing empty name is legal ONNX too
    other = onnx.helper.make_node("Clip", ["x", "", "hi"], ["y"], name="clip")
    model.graph.node.append(other)
    assert compact(model) == ["sage_0"]
    assert list(node.input) == ["query", "key", "value", "attn_mask"]
    assert list(other.input) == ["x", "", "hi"], "only SageAttention nodes are touched"
