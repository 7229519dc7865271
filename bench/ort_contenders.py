"""ONNX Runtime contenders for bench/: the SageAttention op in an ORT session, and ORT's own fused attention
(com.microsoft MultiHeadAttention and the opset-23 Attention op), all on the CUDA EP with IO binding on the
caller's torch tensors, so every contender reads the same device memory.

Each factory returns a zero-argument callable that runs the attention once; `time_ort` times such callables.
ORT synchronizes its stream at the end of every Run, so wall-clock timing of back-to-back runs is the honest
measure (it includes ORT's per-run overhead, which a user pays too).
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import numpy as np
from onnx import TensorProto, helper

from sage_export.onnx_node import create_session, single_node_model

TORCH_TO_ORT = {"float16": (np.float16, TensorProto.FLOAT16), "bfloat16": (None, TensorProto.BFLOAT16), "float32": (np.float32, TensorProto.FLOAT)}


def _providers(torch_module: Any) -> list[Any]:
    stream = torch_module.cuda.current_stream().cuda_stream
    return [("CUDAExecutionProvider", {"device_id": "0", "user_compute_stream": str(stream)}), "CPUExecutionProvider"]


def _bind(binding: Any, name: str, tensor: Any, is_output: bool = False) -> None:
    dtype = str(tensor.dtype).replace("torch.", "")
    np_type, onnx_type = TORCH_TO_ORT[dtype]
    elem = np_type if np_type is not None else onnx_type
    bind = binding.bind_output if is_output else binding.bind_input
    bind(name, "cuda", 0, elem, list(tensor.shape), tensor.data_ptr())


def _runner(sess: Any, inputs: dict[str, Any], outputs: dict[str, Any]) -> Callable[[], None]:
    binding = sess.io_binding()
    for name, t in inputs.items():
        _bind(binding, name, t)
    for name, t in outputs.items():
        _bind(binding, name, t, is_output=True)

    def run() -> None:
        sess.run_with_iobinding(binding)

    return run


def sage_op(torch_module: Any, q: Any, k: Any, v: Any, **attrs: Any) -> tuple[Callable[[], None], Any]:
    """SageAttention through ORT. q, k, v: BNSH CUDA tensors. Returns (run, output tensor)."""
    dtype = str(q.dtype).replace("torch.", "")
    model = single_node_model(list(q.shape), list(k.shape), list(v.shape), dtype=dtype, **attrs)
    sess = create_session(model, providers=_providers(torch_module))
    out = torch_module.empty_like(q)
    return _runner(sess, {"query": q, "key": k, "value": v}, {"output": out}), out


def ort_multihead_attention(torch_module: Any, q: Any, k: Any, v: Any, causal: bool) -> tuple[Callable[[], None], Any]:
    """com.microsoft MultiHeadAttention (fp16), inputs as (B, S, H*D) — transposed once, outside the timing."""
    b, h, s, d = q.shape
    to_bsh = lambda t: t.transpose(1, 2).reshape(b, t.shape[2], h * d).contiguous()  # noqa: E731
    qs, ks, vs = to_bsh(q), to_bsh(k), to_bsh(v)
    node = helper.make_node("MultiHeadAttention", ["q", "k", "v"], ["y"], domain="com.microsoft", num_heads=h, unidirectional=int(causal))
    elem = TensorProto.FLOAT16
    graph = helper.make_graph(
        [node], "mha",
        [helper.make_tensor_value_info(n, elem, list(t.shape)) for n, t in (("q", qs), ("k", ks), ("v", vs))],
        [helper.make_tensor_value_info("y", elem, list(qs.shape))],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    sess = create_session(model, providers=_providers(torch_module))
    out = torch_module.empty_like(qs)
    return _runner(sess, {"q": qs, "k": ks, "v": vs}, {"y": out}), out.reshape(b, s, h, d).transpose(1, 2)


def onnx_attention_23(torch_module: Any, q: Any, k: Any, v: Any, causal: bool) -> tuple[Callable[[], None], Any]:
    """The opset-23 ONNX Attention op on BNSH inputs (fp16)."""
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], is_causal=int(causal))
    elem = TensorProto.FLOAT16
    graph = helper.make_graph(
        [node], "attention23",
        [helper.make_tensor_value_info(n, elem, list(t.shape)) for n, t in (("q", q), ("k", k), ("v", v))],
        [helper.make_tensor_value_info("y", elem, list(q.shape))],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    model.ir_version = 10
    sess = create_session(model, providers=_providers(torch_module))
    out = torch_module.empty_like(q)
    return _runner(sess, {"q": q, "k": k, "v": v}, {"y": out}), out


def time_ort(torch_module: Any, run: Callable[[], None], warmup: int = 3, reps: int = 10, rounds: int = 5) -> float:
    """Median seconds per call over `rounds` rounds of `reps` back-to-back calls."""
    for _ in range(warmup):
        run()
    torch_module.cuda.synchronize()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            run()
        torch_module.cuda.synchronize()
        samples.append((time.perf_counter() - start) / reps)
    return statistics.median(samples)
