"""Quantization config (files, overrides, validation against the schema) and the per-model report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import helper

from graph_passes import CONFIGURABLE, ConfigError, NodeOverride, SageConfig, rewrite_model
from graph_passes.config import STRUCTURAL
from sage_export.schema import SCHEMA

from .helpers import F32, attrs_of, eager_attention, make_model, sage_nodes


def three_layers():
    """Three eager attention sites named /layers.{i}/attn/..., chained through Reshapes."""
    nodes, inits = [], []
    from onnx import numpy_helper

    prev = "x"
    for i in range(3):
        m = eager_attention(b=1, s=8, h=2, d=16)
        rename = {}
        for t in m.graph.initializer:
            rename[t.name] = f"l{i}_{t.name}"
            inits.append(numpy_helper.from_array(numpy_helper.to_array(t), rename[t.name]))
        for n in m.graph.node:
            ins = [prev + "_bshd" if x in ("q", "k", "v") else rename.get(x, f"l{i}_{x}") for x in n.input]
            outs = [f"l{i}_{x}" for x in n.output]
            new = helper.make_node(n.op_type, ins, outs, name=n.name.replace("/attn/", f"/layers.{i}/attn/"))
            new.attribute.extend(n.attribute)
            nodes.append(new)
        nodes.insert(len(nodes) - len(m.graph.node), helper.make_node("Reshape", [prev, "bshd"], [prev + "_bshd"]))
        prev = f"l{i}_out"
    inits.append(numpy_helper.from_array(np.array([1, 8, 2, 16], np.int64), "bshd"))
    return make_model(nodes, [("x", F32, [1, 8, 32])], [(prev, F32, [1, 8, 32])], inits)


def test_schema_drives_the_configurable_attributes():
    assert set(CONFIGURABLE) | STRUCTURAL == set(SCHEMA.attributes)
    assert SageConfig().resolve([], 0).attributes == {k: SCHEMA.attributes[k].default for k in CONFIGURABLE}


def test_toml_and_json_files_give_the_same_config(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[defaults]\nqk_quant = "int8"\npv_dtype = "fp16"\n\n'
        '[[override]]\nregex = "layers\\\\.1/"\npv_dtype = "fp8_e4m3"\npv_accum = "fp16"\n\n'
        "[[override]]\nlayers = [2]\nenabled = false\n"
    )
    js = tmp_path / "c.json"
    js.write_text(
        json.dumps(
            {
                "defaults": {"qk_quant": "int8", "pv_dtype": "fp16"},
                "override": [
                    {"regex": "layers\\.1/", "pv_dtype": "fp8_e4m3", "pv_accum": "fp16"},
                    {"layers": [2], "enabled": False},
                ],
            }
        )
    )
    a, b = SageConfig.from_file(toml), SageConfig.from_file(js)
    assert a == b
    assert SageConfig.from_dict(a.to_dict()) == a


def test_overrides_by_regex_layer_and_name():
    cfg = SageConfig.from_dict(
        {
            "defaults": {"pv_dtype": "fp16"},
            "override": [
                {"regex": r"layers\.1/", "qk_quant": "int4"},
                {"layers": [2], "enabled": False},
                {"name": "/layers.0/attn/Softmax", "smooth_k": 0},
            ],
        }
    )
    model, report = rewrite_model(three_layers(), cfg)
    by_index = {s.index: s for s in report.sites}
    assert [s.rewritten for s in report.sites] == [True, True, False]
    assert by_index[2].reason == "disabled by the config"
    assert by_index[0].attributes["smooth_k"] == 0 and by_index[0].attributes["qk_quant"] == "int8"
    assert by_index[1].attributes["qk_quant"] == "int4" and by_index[1].attributes["smooth_k"] == 1
    nodes = {n.name: attrs_of(n) for n in sage_nodes(model)}
    assert nodes["/layers.1/attn/SageAttention"]["qk_quant"] == "int4"
    assert all(a["pv_dtype"] == "fp16" for a in nodes.values())


def test_later_overrides_win():
    cfg = SageConfig(
        overrides=(NodeOverride({"qk_quant": "int4"}, layers=(0,)), NodeOverride({"qk_quant": "int8"}, regex="."))
    )
    assert cfg.resolve(["a"], 0).attributes["qk_quant"] == "int8"


@pytest.mark.parametrize(
    "raw,message",
    [
        ({"defaults": {"qk_quant": "int2"}}, "allowed values"),
        ({"defaults": {"scale": 0.1}}, "derived from the graph"),
        ({"defaults": {"is_causal": 1}}, "derived from the graph"),
        ({"defaults": {"bogus": 1}}, "unknown attribute"),
        ({"override": [{"pv_dtype": "fp16"}]}, "selector"),
        ({"override": [{"regex": "(", "pv_dtype": "fp16"}]}, "regex"),
        ({"override": [{"layers": [-1]}]}, "non-negative"),
        ({"defaults": {"smooth_k": 2}}, "allowed values"),
        ({"default": {}}, "top-level"),
    ],
)
def test_invalid_configs(raw, message):
    with pytest.raises(ConfigError, match=message):
        SageConfig.from_dict(raw)


def test_with_defaults_is_what_cli_flags_use():
    cfg = SageConfig(defaults={"pv_dtype": "fp16"}).with_defaults(qk_quant="int4", pv_dtype=None)
    assert dict(cfg.defaults) == {"pv_dtype": "fp16", "qk_quant": "int4"}
    with pytest.raises(ConfigError):
        SageConfig().with_defaults(qk_quant="int3")


def test_report_formats(tmp_path):
    i = np.arange(16)[:, None]
    model = eager_attention(mask=np.where(i % 2 == 0, 0.0, -1.0))  # (Sq, 1): broadcast along keys, not fed
    _, report = rewrite_model(three_layers())
    js = tmp_path / "r.json"
    md = tmp_path / "r.md"
    report.save(js)
    report.save(md)
    data = json.loads(js.read_text())
    assert data["summary"] == {"sites": 3, "rewritten": 3, "untouched": 0}
    site = data["sites"][0]
    assert site["rewritten"] and site["attributes"]["layout"] == "BSNH" and site["sage_node"]
    assert set(site["inputs"]) == {"query", "key", "value"}
    text = md.read_text()
    assert "| 0 | decomposed |" in text and "**3 rewritten**" in text
    _, untouched = rewrite_model(model)
    assert "does not provably broadcast" in untouched.to_markdown()
    assert untouched.to_dict()["sites"][0]["reason"]
