#!/usr/bin/env python3
"""Writes a one-node SageAttention model (fp16, BNSH, dynamic batch and sequence) for trying the TensorRT
sample without a rewritten real model. A real model comes from the ONNX rewrite (graph_passes)."""
from __future__ import annotations

import argparse

import onnx

from sage_export.onnx_node import single_node_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("output", help="path of the .onnx file to write")
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    p.add_argument("--causal", action="store_true")
    args = p.parse_args()
    q = ["batch", args.heads, "seq", args.head_dim]
    kv = ["batch", args.kv_heads, "seq", args.head_dim]
    model = single_node_model(q, kv, kv, dtype=args.dtype, name="sage_attention_0", is_causal=int(args.causal))
    onnx.save(model, args.output)
    print(f"wrote {args.output}: inputs query {q}, key/value {kv}, {args.dtype}")


if __name__ == "__main__":
    main()
