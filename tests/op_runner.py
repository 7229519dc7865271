"""Runs one SageAttention node through ONNX Runtime (CPU EP unless told) and returns float32 numpy."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from onnx import TensorProto

from sage_export.numerics import round_to_dtype
from sage_export.onnx_node import create_session, from_onnx_output, single_node_model, to_onnx_array


@lru_cache(maxsize=64)
def _session(shapes: tuple, dtype: str, attrs: tuple, name: str, providers: tuple, optional: tuple) -> Any:
    q_shape, k_shape, v_shape = shapes
    mask, lengths = optional
    model = single_node_model(q_shape, k_shape, v_shape, dtype=dtype, name=name, mask=mask, key_lengths=lengths, **dict(attrs))
    return create_session(model, providers=providers)


def _optional_spec(x: np.ndarray | None, mask_dtype: str | None) -> tuple | None:
    if x is None:
        return None
    return (tuple(x.shape), mask_dtype or str(x.dtype))


def run_sage(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    dtype: str = "float32",
    name: str = "sage_node",
    providers: tuple = ("CPUExecutionProvider",),
    attn_mask: np.ndarray | None = None,
    key_lengths: np.ndarray | None = None,
    mask_dtype: str | None = None,
    **attrs: Any,
) -> np.ndarray:
    """`mask_dtype` names the ONNX type of attn_mask when it differs from the array's (e.g. 'bfloat16')."""
    optional = (_optional_spec(attn_mask, mask_dtype), _optional_spec(key_lengths, None))
    sess = _session((q.shape, k.shape, v.shape), dtype, tuple(sorted(attrs.items())), name, providers, optional)
    import onnxruntime as ort

    binding = sess.io_binding()
    keep_alive = []  # OrtValues wrap numpy memory without owning it (ORT 1.20): hold them until the run ends
    feeds = [("query", q, dtype), ("key", k, dtype), ("value", v, dtype)]
    if attn_mask is not None:
        feeds.append(("attn_mask", attn_mask, mask_dtype or str(attn_mask.dtype)))
    if key_lengths is not None:
        feeds.append(("key_lengths", key_lengths, str(key_lengths.dtype)))
    for n, x, t in feeds:
        value = to_onnx_array(x, t)
        value = value if isinstance(value, ort.OrtValue) else ort.OrtValue.ortvalue_from_numpy(value)
        keep_alive.append(value)
        binding.bind_ortvalue_input(n, value)
    # A preallocated output works for bfloat16 too, which OrtValue.numpy() cannot convert.
    storage = np.full(q.shape, np.nan, dtype=np.float32 if dtype == "float32" else np.float16)
    if dtype == "bfloat16":
        storage = np.full(q.shape, 0x7FC0, dtype=np.uint16)  # poisoned: bf16 NaN
        out = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(storage, TensorProto.BFLOAT16)
    else:
        out = ort.OrtValue.ortvalue_from_numpy(storage)
    binding.bind_ortvalue_output("output", out)
    sess.run_with_iobinding(binding)
    del keep_alive
    return from_onnx_output(storage, dtype)


def rounded_inputs(arrays: tuple[np.ndarray, ...], dtype: str) -> tuple[np.ndarray, ...]:
    """Inputs as float32 arrays holding exactly the values an input of `dtype` carries."""
    return tuple(round_to_dtype(np.asarray(a, dtype=np.float32), dtype) for a in arrays)
