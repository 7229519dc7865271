#!/usr/bin/env python3
"""Builds a TensorRT engine from an ONNX model whose attention runs as SageAttention nodes.

The TensorRT ONNX parser has no importer called SageAttention, so it falls back to the plugin registry
and finds the ("SageAttention", "1", "") creator of libsage_attention_trt.so, which must therefore be
loaded into the builder's registry before parsing. Precision: TensorRT 11 networks are always strongly
typed, so the plugin runs in the model's own type (export the model in float16 or bfloat16); TensorRT 10
also honours --fp16 (BuilderFlag.FP16) for weakly typed networks.

Mask inputs: a SageAttention node may carry attn_mask and key_lengths. An absent optional input written as
an empty name (`query, key, value, "", key_lengths`) is dropped before parsing (compact_inputs.py): the
plugin tells the optional inputs apart by type, and an empty slot would reach it as a null tensor.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import onnx
import tensorrt as trt

from compact_inputs import compact_sage_inputs
from trt_common import default_plugin_path, load_sage_plugin, parse_shapes, trt_major_version


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("onnx", type=Path, help="model with com.sageattention::SageAttention nodes")
    p.add_argument("--engine", type=Path, required=True, help="where to write the serialized engine (plan)")
    p.add_argument("--plugin", type=Path, default=None, help="libsage_attention_trt.so (default: sage_export's)")
    p.add_argument("--shapes", action="append", default=[], metavar="NAME:MIN,OPT,MAX",
                   help="optimization profile of a dynamic input, dims joined by x; repeat per input")
    p.add_argument("--fp16", action="store_true", help="TensorRT 10: allow FP16 kernels (weakly typed networks)")
    p.add_argument("--workspace-mib", type=int, default=4096, help="workspace pool limit")
    p.add_argument("--version-compatible", action="store_true",
                   help="build a version-compatible plan with the plugin library embedded in it")
    p.add_argument("--verbose", action="store_true")
    return p.parse_args()


def report_plugin_layers(network: trt.INetworkDefinition) -> int:
    count = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type == trt.LayerType.PLUGIN_V3:
            types = ", ".join(str(layer.get_input(j).dtype) for j in range(layer.num_inputs))
            print(f"  plugin layer {layer.name}: inputs {types}")
            count += 1
    return count


def main() -> int:
    args = parse_args()
    plugin = args.plugin or default_plugin_path()
    logger = trt.Logger(trt.Logger.VERBOSE if args.verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    load_sage_plugin(builder.get_plugin_registry(), plugin)

    network = builder.create_network(0)  # TensorRT 11: always strongly typed; 10: explicit batch by default
    parser = trt.OnnxParser(network, logger)
    model = onnx.load(str(args.onnx), load_external_data=False)  # the parser reads external weights itself
    compacted = compact_sage_inputs(model)
    if compacted:
        print(f"dropped empty optional-input names of {len(compacted)} SageAttention node(s) for TensorRT")
        parsed = parser.parse(model.SerializeToString(), str(args.onnx))  # path: where external weights live
    else:
        parsed = parser.parse_from_file(str(args.onnx))
    if not parsed:
        for i in range(parser.num_errors):
            print(f"parser error: {parser.get_error(i)}", file=sys.stderr)
        return 1
    print(f"parsed {args.onnx}: {network.num_layers} layers")
    if report_plugin_layers(network) == 0:
        print("warning: no plugin layer; does the model contain SageAttention nodes?", file=sys.stderr)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, args.workspace_mib << 20)
    if args.fp16:
        if hasattr(trt.BuilderFlag, "FP16") and trt_major_version() < 11:
            config.set_flag(trt.BuilderFlag.FP16)
        else:
            print("note: TensorRT 11 networks are strongly typed; the plugin runs in the model's own type "
                  "(see the plugin layer input types above)")
    if args.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
        config.plugins_to_serialize = [str(plugin)]  # the runtime must allow engine host code to load it

    shapes = parse_shapes(args.shapes)
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    dynamic = [t for t in inputs if any(d < 0 for d in t.shape)]
    missing = [t.name for t in dynamic if t.name not in shapes]
    if missing:
        print(f"error: dynamic inputs {missing} need --shapes NAME:MIN,OPT,MAX", file=sys.stderr)
        return 1
    if dynamic:
        profile = builder.create_optimization_profile()
        for t in dynamic:
            profile.set_shape(t.name, *shapes[t.name])
        config.add_optimization_profile(profile)

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        print("error: engine build failed (see the TensorRT log; plugin errors name the layer)", file=sys.stderr)
        return 1
    args.engine.write_bytes(bytes(plan))
    print(f"wrote {args.engine} ({plan.nbytes} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
