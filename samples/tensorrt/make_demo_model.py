#!/usr/bin/env python3
"""Writes a one-node SageAttention model (fp16, BNSH, dynamic batch and sequence) for trying the TensorRT
sample without a rewritten real model. A real model comes from the ONNX rewrite (graph_passes).
--key-padding adds a bool attn_mask (batch, seq) input, --key-lengths an int64 key_lengths (batch) input."""
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
    p.add_argument("--key-padding", action="store_true", help="add attn_mask: bool (batch, seq), true = attend")
    p.add_argument("--key-lengths", action="store_true", help="add key_lengths: int64 (batch)")
    args = p.parse_args()
    q = ["batch", args.heads, "seq", args.head_dim]
    kv = ["batch", args.kv_heads, "seq", args.head_dim]
    mask = (["batch", "seq"], "bool") if args.key_padding else None
    lengths = (["batch"], "int64") if args.key_lengths else None
    model = single_node_model(q, kv, kv, dtype=args.dtype, name="sage_attention_0", mask=mask, key_lengths=lengths,
                              is_causal=int(args.causal))
    onnx.save(model, args.output)
    extra = "".join(f", {name} {spec[0]} {spec[1]}" for name, spec in (("attn_mask", mask), ("key_lengths", lengths)) if spec)
    print(f"wrote {args.output}: inputs query {q}, key/value {kv}, {args.dtype}{extra}")


if __name__ == "__main__":
    main()
