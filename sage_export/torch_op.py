"""``sageattn(q, k, v, **attrs)``: the SageAttention op callable from torch, for A/B checks.

Backed by the op library through ONNX Runtime on the CPU: one single-node model per (dtype, rank,
attributes), with symbolic dimensions so any shape reuses it, and one cached session each. Inference
only (no autograd); tensors are copied to and from the CPU. ``sdpa`` has the signature of
``torch.nn.functional.scaled_dot_product_attention`` for drop-in comparisons.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from . import ort_library_path
from .onnx_node import create_session, from_onnx_output, single_node_model, to_onnx_array
from .schema import SCHEMA

_DTYPES = {"torch.float32": "float32", "torch.float16": "float16", "torch.bfloat16": "bfloat16"}
_lock = threading.Lock()


@lru_cache(maxsize=128)
def _session(dtype: str, rank: int, attrs: tuple[tuple[str, Any], ...], library: str) -> Any:
    dims = [f"d{i}" for i in range(rank)]
    shapes = [[f"q{d}" for d in dims], [f"k{d}" for d in dims], [f"k{d}" for d in dims]]
    model = single_node_model(shapes[0], shapes[1], shapes[2], dtype=dtype, name="sageattn", **dict(attrs))
    return create_session(model, library=Path(library))


def sageattn(q: Any, k: Any, v: Any, *, library: str | Path | None = None, **attrs: Any) -> Any:
    """SageAttention of torch tensors ``q``, ``k``, ``v`` (same dtype and rank); attributes as in the schema.

    Returns a tensor of ``q``'s dtype, shape and device. Raises ValueError for unknown attributes or
    values, and onnxruntime's error for inputs the op rejects (shapes, causal with Sq ≠ Skv, ...).
    """
    import torch

    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    dtype = _DTYPES.get(str(q.dtype))
    if dtype is None:
        raise ValueError(f"unsupported dtype {q.dtype}; use float32, float16 or bfloat16")
    if not (q.dim() == k.dim() == v.dim()) or q.dim() not in (3, 4):
        raise ValueError(f"q, k, v must all be 3-D or 4-D, got ranks {q.dim()}, {k.dim()}, {v.dim()}")
    validated = SCHEMA.validate(attrs)
    explicit = tuple(sorted((name, validated[name]) for name in attrs))
    lib = str(Path(library) if library is not None else ort_library_path())
    with _lock:
        session = _session(dtype, q.dim(), explicit, lib)
    out = _run(session, dtype, [_to_numpy(t) for t in (q, k, v)])
    return torch.from_numpy(out).to(dtype=q.dtype, device=q.device)


def _run(session: Any, dtype: str, arrays: list[np.ndarray]) -> np.ndarray:
    """Run through IO binding into a preallocated output (the output has the query's shape), which also
    works for bfloat16, where session.run cannot return numpy arrays."""
    import onnxruntime as ort
    from onnx import TensorProto

    binding = session.io_binding()
    keep_alive = []  # OrtValues may wrap numpy memory without owning it: hold them until the run ends
    for name, x in zip(SCHEMA.inputs, arrays):
        value = to_onnx_array(x, dtype)
        value = value if isinstance(value, ort.OrtValue) else ort.OrtValue.ortvalue_from_numpy(value)
        keep_alive.append(value)
        binding.bind_ortvalue_input(name, value)
    if dtype == "bfloat16":
        storage = np.zeros(arrays[0].shape, dtype=np.uint16)
        out = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(storage, TensorProto.BFLOAT16)
    else:
        storage = np.zeros(arrays[0].shape, dtype=np.dtype(dtype))
        out = ort.OrtValue.ortvalue_from_numpy(storage)
    binding.bind_ortvalue_output(SCHEMA.outputs[0], out)
    session.run_with_iobinding(binding)
    del keep_alive
    return np.ascontiguousarray(from_onnx_output(storage, dtype))


def sdpa(
    query: Any,
    key: Any,
    value: Any,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    **attrs: Any,
) -> Any:
    """``F.scaled_dot_product_attention`` semantics on 4-D BNSH tensors, computed by SageAttention.

    Masks and dropout are not supported (ValueError). With ``enable_gqa`` (or fewer KV heads than query
    heads) the op's GQA rule applies, which equals SDPA's. Extra keyword arguments are op attributes.
    """
    if attn_mask is not None:
        raise ValueError("attn_mask is not supported by SageAttention version 1")
    if dropout_p:
        raise ValueError("dropout is not supported")
    if query.dim() != 4:
        raise ValueError("sdpa expects 4-D (batch, heads, seq, dim) tensors")
    if key.shape[1] != query.shape[1] and not enable_gqa:
        raise ValueError("query and key head counts differ; pass enable_gqa=True as with torch SDPA")
    return sageattn(
        query,
        key,
        value,
        layout="BNSH",
        is_causal=int(bool(is_causal)),
        scale=0.0 if scale is None else float(scale),
        **attrs,
    )


def _to_numpy(t: Any) -> np.ndarray:
    t = t.detach().to("cpu")
    if str(t.dtype) == "torch.bfloat16":
        t = t.float()  # bf16 values are exact in float32; to_onnx_array rounds back to bf16 losslessly
    return t.contiguous().numpy()


def clear_cache() -> None:
    """Drop the cached sessions (e.g. after rebuilding the library)."""
    with _lock:
        _session.cache_clear()
