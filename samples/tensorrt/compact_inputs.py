#!/usr/bin/env python3
"""Drops the empty-named inputs of SageAttention nodes, for TensorRT only.

ONNX marks an absent optional input with an empty name, so a node with key_lengths but no attn_mask reads
`query, key, value, "", key_lengths`. The TensorRT ONNX parser keeps that slot as a null tensor in the plugin
layer's input list (onnx-tensorrt's fallback plugin importer), and a plugin has no notion of an absent input
in the middle of its list. The SageAttention plugin therefore takes only present inputs and tells attn_mask
and key_lengths apart by type (docs/TENSORRT.md, "Mask inputs"), so `query, key, value, key_lengths` means
the same to it. build_engine.py does this in memory; this script writes the compacted model for trtexec:

    python compact_inputs.py model.onnx model_trt.onnx

The result is for TensorRT only: ONNX Runtime reads inputs by position and would take key_lengths for
attn_mask. Weights stored outside the model stay where they are (keep the output next to the input).
"""
from __future__ import annotations

import argparse
import sys

import onnx

OP_TYPE = "SageAttention"  # the parser maps the op type to the plugin in any domain


def _graphs(graph: onnx.GraphProto):
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _graphs(g)


def compact_sage_inputs(model: onnx.ModelProto) -> list[str]:
    """Removes empty input names from every SageAttention node (subgraphs and local functions included), in
    place. Returns the names of the nodes it changed."""
    changed = []
    nodes = [n for g in _graphs(model.graph) for n in g.node]
    nodes += [n for f in model.functions for n in f.node]
    for node in nodes:
        if node.op_type == OP_TYPE and any(name == "" for name in node.input):
            present = [name for name in node.input if name]
            del node.input[:]
            node.input.extend(present)
            changed.append(node.name or f"<unnamed {OP_TYPE}>")
    return changed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="model with com.sageattention::SageAttention nodes")
    p.add_argument("output", help="where to write the compacted model (TensorRT only)")
    args = p.parse_args()
    model = onnx.load(args.input, load_external_data=False)
    changed = compact_sage_inputs(model)
    onnx.save(model, args.output)
    print(f"wrote {args.output}: {len(changed)} SageAttention node(s) compacted" + (f" ({', '.join(changed)})" if changed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
