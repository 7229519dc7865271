#!/usr/bin/env python3
"""Runs a SageAttention TensorRT engine on random inputs, times it, and (optionally) compares the output
with ONNX Runtime running the same ONNX model through the SageAttention custom op on the CPU.

GPU buffers come from PyTorch (any CUDA tensor library would do); the plugin library is loaded into the
runtime's registry before the plan is deserialized.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import tensorrt as trt
import torch

from trt_common import default_plugin_path, load_sage_plugin, parse_shapes

TORCH_TYPES = {trt.float32: torch.float32, trt.float16: torch.float16, trt.bfloat16: torch.bfloat16,
               trt.int32: torch.int32, trt.int64: torch.int64}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("engine", type=Path)
    p.add_argument("--plugin", type=Path, default=None, help="libsage_attention_trt.so (default: sage_export's)")
    p.add_argument("--shapes", action="append", default=[], metavar="NAME:DIMS",
                   help="shape of a dynamic input for this run, dims joined by x; repeat per input")
    p.add_argument("--onnx", type=Path, default=None, help="compare with ONNX Runtime (CPU) on this model")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--version-compatible", action="store_true", help="allow the plan's embedded plugin library")
    return p.parse_args()


def random_input(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Gaussian floats; for the optional SageAttention inputs, plausible values: a bool mask (attn_mask) keeps
    ~80% of the keys and always key 0, integers (key_lengths) lie in [1, 4096] (the op clamps them to the key
    length)."""
    if dtype == torch.bool:
        mask = torch.rand(shape, device="cuda") > 0.2
        mask[..., 0] = True
        return mask
    if dtype in (torch.int32, torch.int64):
        return torch.randint(1, 4097, shape, device="cuda", dtype=dtype)
    return torch.randn(shape, device="cuda").to(dtype)


ORT_NUMPY_TYPES = {"tensor(float16)": np.float16, "tensor(float)": np.float32, "tensor(bool)": np.bool_,
                   "tensor(int32)": np.int32, "tensor(int64)": np.int64}


def main() -> int:
    args = parse_args()
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    if args.version_compatible:
        runtime.engine_host_code_allowed = True
    else:
        load_sage_plugin(runtime.get_plugin_registry(), args.plugin or default_plugin_path())
    engine = runtime.deserialize_cuda_engine(args.engine.read_bytes())
    if engine is None:
        print("error: could not deserialize the engine (is the plugin library loaded?)", file=sys.stderr)
        return 1
    context = engine.create_execution_context()
    shapes = {name: triple[0] for name, triple in parse_shapes(args.shapes).items()}

    torch.manual_seed(0)
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    tensors = {}
    for name in inputs:
        shape = shapes.get(name, tuple(engine.get_tensor_shape(name)))
        if any(d < 0 for d in shape):
            print(f"error: input {name} is dynamic; pass --shapes {name}:DIMS", file=sys.stderr)
            return 1
        context.set_input_shape(name, shape)
        tensors[name] = random_input(shape, TORCH_TYPES[engine.get_tensor_dtype(name)])
    for name in names:
        if name not in tensors:
            shape = tuple(context.get_tensor_shape(name))
            tensors[name] = torch.full(shape, float("nan"), device="cuda").to(TORCH_TYPES[engine.get_tensor_dtype(name)])
    for name, t in tensors.items():
        context.set_tensor_address(name, t.data_ptr())

    stream = torch.cuda.Stream()
    if not context.execute_async_v3(stream.cuda_stream):
        print("error: execute_async_v3 failed (see the TensorRT log)", file=sys.stderr)
        return 1
    stream.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.cuda.stream(stream):
        start.record(stream)
        for _ in range(args.iterations):
            context.execute_async_v3(stream.cuda_stream)
        end.record(stream)
    stream.synchronize()
    print(f"{args.iterations} runs: {start.elapsed_time(end) / args.iterations:.3f} ms per run")
    outputs = [n for n in names if n not in inputs]
    for name in outputs:
        out = tensors[name].float()
        print(f"output {name}: shape {tuple(out.shape)}, finite {bool(torch.isfinite(out).all())}")

    if args.onnx is not None:
        from sage_export.metrics import fidelity
        from sage_export.onnx_node import create_session

        session = create_session(args.onnx)  # CPU EP with the SageAttention custom-op library
        feeds = {}
        for name in inputs:
            meta = next(i for i in session.get_inputs() if i.name == name)
            t = tensors[name]
            host = (t.float() if t.is_floating_point() else t).cpu().numpy()
            feeds[name] = host.astype(ORT_NUMPY_TYPES.get(meta.type, np.float32))
        expected = session.run(outputs, feeds)
        for name, ref in zip(outputs, expected):
            print(f"TensorRT vs ONNX Runtime CPU, {name}: {fidelity(tensors[name].float().cpu().numpy(), ref.astype(np.float32))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
