"""Run the CUDA SageAttention runner on torch tensors through its C API (plugin/cuda/c_api.h) with ctypes.

The C entry points live in every library that links the ``sage_cuda`` objects: the ORT op library
(``sage_export.ort_library_path()``, which honours ``SAGE_ORT_LIBRARY``) or the standalone
``libsage_cuda.so`` of ``cmake -S plugin/cuda`` (set ``SAGE_CUDA_LIBRARY`` to use it).

    out = sageattn_cuda(q, k, v, layout="BNSH", is_causal=1, pv_dtype="fp16")
    out = sageattn_cuda(q, k, v, key_lengths=lengths, is_causal=1, causal_alignment="bottom_right")

Inputs are CUDA tensors of one dtype (float32, float16, bfloat16) in the op's layouts: 4-D BNSH
``(B, H, S, D)`` or BSNH ``(B, S, H, D)``, or 3-D ``(B, S, H*D)`` with ``q_num_heads``/``kv_num_heads``.
Any strides work as long as channels are contiguous. The call runs on ``torch.cuda.current_stream()``
with a workspace from torch's allocator; attributes are validated against the op schema.
The optional inputs (docs/OP_CONTRACT.md, "Masks"): ``attn_mask`` (bool or additive float, ``(B, Skv)`` or
4-D broadcastable to ``(B, Hq, Sq, Skv)``) and ``key_lengths`` (int32/int64 ``(B,)``), CUDA tensors.
"""

from __future__ import annotations

import ctypes
import os
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from sage_export.schema import load_schema

PHASE_PREPROCESS = 1
PHASE_ATTENTION = 2
PHASE_ALL = 3

_ENUM_ATTRS = ("qk_quant", "qk_granularity", "pv_dtype", "pv_accum", "kernel")
_ERROR_LEN = 1024


class SageCudaCall(ctypes.Structure):
    """Mirror of ``SageCudaCall`` in plugin/cuda/c_api.h (field order and types must match)."""

    _fields_ = [
        ("q", ctypes.c_void_p),
        ("k", ctypes.c_void_p),
        ("v", ctypes.c_void_p),
        ("out", ctypes.c_void_p),
        ("batch", ctypes.c_int64),
        ("q_heads", ctypes.c_int64),
        ("kv_heads", ctypes.c_int64),
        ("q_len", ctypes.c_int64),
        ("kv_len", ctypes.c_int64),
        ("head_dim", ctypes.c_int64),
        ("q_strides", ctypes.c_int64 * 3),
        ("k_strides", ctypes.c_int64 * 3),
        ("v_strides", ctypes.c_int64 * 3),
        ("out_strides", ctypes.c_int64 * 3),
        ("dtype", ctypes.c_int32),
        ("is_causal", ctypes.c_int32),
        ("qk_quant", ctypes.c_int32),
        ("qk_granularity", ctypes.c_int32),
        ("smooth_k", ctypes.c_int32),
        ("smooth_q", ctypes.c_int32),
        ("pv_dtype", ctypes.c_int32),
        ("pv_accum", ctypes.c_int32),
        ("kernel", ctypes.c_int32),
        ("scale", ctypes.c_float),
        ("phases", ctypes.c_int32),
        ("workspace", ctypes.c_void_p),
        ("workspace_bytes", ctypes.c_uint64),
        ("stream", ctypes.c_void_p),
    ]


class SageCudaMasks(ctypes.Structure):
    """Mirror of ``SageCudaMasks`` in plugin/cuda/c_api.h (C API version 2)."""

    _fields_ = [
        ("attn_mask", ctypes.c_void_p),
        ("mask_dtype", ctypes.c_int32),
        ("mask_dims", ctypes.c_int64 * 4),
        ("mask_strides", ctypes.c_int64 * 3),
        ("key_lengths", ctypes.c_void_p),
        ("key_lengths_int64", ctypes.c_int32),
        ("causal_alignment", ctypes.c_int32),
    ]


class CudaLibraryError(RuntimeError):
    """The library cannot be loaded or was built without the CUDA kernels."""


def library_path() -> Path:
    """``$SAGE_CUDA_LIBRARY`` if set, else the ORT op library (``sage_export.ort_library_path()``)."""
    override = os.environ.get("SAGE_CUDA_LIBRARY")
    if override:
        path = Path(override).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"SAGE_CUDA_LIBRARY={override} does not name a file")
        return path
    from sage_export import ort_library_path

    return ort_library_path()


@cache
def _library() -> ctypes.CDLL:
    path = library_path()
    lib = ctypes.CDLL(str(path))
    if not hasattr(lib, "sage_cuda_attention_c"):
        raise CudaLibraryError(f"{path} has no CUDA kernels (it was built without a CUDA compiler)")
    call_p = ctypes.POINTER(SageCudaCall)
    err_t = (ctypes.c_char_p, ctypes.c_uint64)
    lib.sage_cuda_c_api_version.restype = ctypes.c_int
    lib.sage_cuda_workspace_bytes_c.argtypes = (call_p, ctypes.POINTER(ctypes.c_uint64), *err_t)
    lib.sage_cuda_can_implement_c.argtypes = (call_p, *err_t)
    lib.sage_cuda_describe_c.argtypes = (call_p, *err_t)
    lib.sage_cuda_attention_c.argtypes = (call_p, *err_t)
    lib.sage_cuda_e4m3_c.argtypes = (
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p, *err_t)
    lib.sage_host_e4m3_c.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
    lib.sage_host_e4m3_c.restype = None
    for name in ("sage_cuda_workspace_bytes_c", "sage_cuda_can_implement_c", "sage_cuda_describe_c",
                 "sage_cuda_attention_c", "sage_cuda_e4m3_c"):
        getattr(lib, name).restype = ctypes.c_int
    version = lib.sage_cuda_c_api_version()
    if version not in (1, 2):
        raise CudaLibraryError(f"{path}: C API version {version}, expected 1 or 2")
    if version >= 2:  # the *_v2 entry points take the optional inputs
        masks_p = ctypes.POINTER(SageCudaMasks)
        lib.sage_cuda_workspace_bytes_v2_c.argtypes = (call_p, masks_p, ctypes.POINTER(ctypes.c_uint64), *err_t)
        lib.sage_cuda_can_implement_v2_c.argtypes = (call_p, masks_p, *err_t)
        lib.sage_cuda_describe_v2_c.argtypes = (call_p, masks_p, *err_t)
        lib.sage_cuda_attention_v2_c.argtypes = (call_p, masks_p, *err_t)
        for name in ("sage_cuda_workspace_bytes_v2_c", "sage_cuda_can_implement_v2_c", "sage_cuda_describe_v2_c",
                     "sage_cuda_attention_v2_c"):
            getattr(lib, name).restype = ctypes.c_int
    return lib


def cuda_available() -> tuple[bool, str]:
    """Whether torch sees a GPU and the library has the CUDA runner; else ``(False, reason)``."""
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if not torch.cuda.is_available():
        return False, "torch.cuda is not available (no GPU)"
    try:
        _library()
    except (OSError, FileNotFoundError, CudaLibraryError) as exc:
        return False, f"SageAttention CUDA library unavailable: {exc}"
    return True, ""


def _dtype_code(dtype: Any) -> int:
    import torch

    codes = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
    if dtype not in codes:
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
    return codes[dtype]


def _bhsd(x: Any, layout: str, heads: int, name: str) -> tuple[tuple[int, int, int, int], tuple[int, int, int]]:
    """(B, H, S, D) and the (batch, head, token) element strides of ``x``'s view."""
    if x.stride(-1) != 1:
        raise ValueError(f"{name} must have contiguous channels (stride 1 in the last dimension)")
    if x.dim() == 3:
        if heads <= 0 or x.shape[2] % heads:
            raise ValueError(f"3-D {name} needs q_num_heads/kv_num_heads > 0 dividing its last dimension")
        d = x.shape[2] // heads
        return (x.shape[0], heads, x.shape[1], d), (x.stride(0), d, x.stride(1))
    if x.dim() != 4:
        raise ValueError(f"{name} must be 3-D or 4-D, got {x.dim()}-D")
    if layout == "BNSH":
        return tuple(x.shape), (x.stride(0), x.stride(1), x.stride(2))  # type: ignore[return-value]
    b, s, h, d = x.shape
    return (b, h, s, d), (x.stride(0), x.stride(2), x.stride(1))


_MASK_DTYPES = ("float32", "float16", "bfloat16", "bool")  # SageCudaMasks.mask_dtype codes


def _masks(attn_mask: Any, key_lengths: Any, alignment: str, bhsk: tuple[int, int, int, int]) -> SageCudaMasks:
    """The optional inputs as SageCudaMasks (validated here; the C side checks the shapes again)."""
    m = SageCudaMasks()
    m.causal_alignment = 1 if alignment == "bottom_right" else 0
    b, hq, sq, skv = bhsk
    if key_lengths is not None:
        if not key_lengths.is_cuda or str(key_lengths.dtype) not in ("torch.int32", "torch.int64"):
            raise ValueError(f"key_lengths must be an int32/int64 CUDA tensor, got {key_lengths.dtype}")
        if tuple(key_lengths.shape) != (b,) or not key_lengths.is_contiguous():
            raise ValueError(f"key_lengths must be contiguous of shape ({b},), got {tuple(key_lengths.shape)}")
        m.key_lengths = key_lengths.data_ptr()
        m.key_lengths_int64 = int(str(key_lengths.dtype) == "torch.int64")
    if attn_mask is not None:
        dtype = str(attn_mask.dtype).removeprefix("torch.")
        if not attn_mask.is_cuda or dtype not in _MASK_DTYPES:
            raise ValueError(f"attn_mask must be a bool/float32/float16/bfloat16 CUDA tensor, got {attn_mask.dtype}")
        if attn_mask.dim() == 2:
            if tuple(attn_mask.shape) != (b, skv):
                raise ValueError(f"a 2-D attn_mask must be (batch, key length) = {(b, skv)}, got {tuple(attn_mask.shape)}")
            attn_mask = attn_mask[:, None, None, :]
        if attn_mask.dim() != 4:
            raise ValueError(f"attn_mask must be (B, Skv) or 4-D broadcastable to {(b, hq, sq, skv)}")
        if attn_mask.stride(-1) != 1 and attn_mask.shape[-1] > 1:
            raise ValueError("attn_mask must have contiguous keys (stride 1 in the last dimension)")
        m.attn_mask = attn_mask.data_ptr()
        m.mask_dtype = _MASK_DTYPES.index(dtype)
        m.mask_dims[:] = tuple(attn_mask.shape)
        m.mask_strides[:] = tuple(attn_mask.stride()[:3])
    return m


def _check(status: int, buffer: ctypes.Array, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"{what}: {buffer.value.decode(errors='replace')}")


class CudaAttentionCall:
    """One bound call: tensors, attributes and a workspace, runnable again (also phase by phase)."""

    def __init__(self, q: Any, k: Any, v: Any, *, out: Any = None, attn_mask: Any = None, key_lengths: Any = None,
                 **attrs: Any) -> None:
        import torch

        if not (q.is_cuda and k.is_cuda and v.is_cuda):
            raise ValueError("query, key and value must be CUDA tensors")
        if not (q.dtype == k.dtype == v.dtype):
            raise ValueError(f"query, key and value must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
        a = load_schema().validate(attrs)
        self.attrs = a
        layout = str(a["layout"])
        (b, hq, sq, d), qs = _bhsd(q, layout, int(a["q_num_heads"]), "query")
        (bk, hkv, skv, dk), ks = _bhsd(k, layout, int(a["kv_num_heads"]), "key")
        vshape, vs = _bhsd(v, layout, int(a["kv_num_heads"]), "value")
        if (bk, hkv, skv, dk) != vshape or bk != b or dk != d:
            raise ValueError(f"incompatible shapes: query {tuple(q.shape)}, key {tuple(k.shape)}, value {tuple(v.shape)}")
        if out is None:
            out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        _, os_ = _bhsd(out, layout, hq, "output")
        self.q, self.k, self.v, self.out = q, k, v, out  # keep the tensors alive with the call
        self.attn_mask, self.key_lengths = attn_mask, key_lengths
        spec = load_schema().attributes
        c = SageCudaCall()
        c.q, c.k, c.v, c.out = q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr()
        c.batch, c.q_heads, c.kv_heads, c.q_len, c.kv_len, c.head_dim = b, hq, hkv, sq, skv, d
        c.q_strides[:], c.k_strides[:], c.v_strides[:], c.out_strides[:] = qs, ks, vs, os_
        c.dtype = _dtype_code(q.dtype)
        c.is_causal, c.smooth_k, c.smooth_q = int(a["is_causal"]), int(a["smooth_k"]), int(a["smooth_q"])
        for name in _ENUM_ATTRS:
            setattr(c, name, spec[name].allowed.index(a[name]))
        c.scale = float(a["scale"])
        c.phases = PHASE_ALL
        self.call = c
        self._lib = _library()
        lib = self._lib
        optional = attn_mask is not None or key_lengths is not None or a["causal_alignment"] != "top_left"
        if optional and not hasattr(lib, "sage_cuda_attention_v2_c"):
            raise CudaLibraryError(f"{library_path()} predates the optional inputs (C API version 1)")
        # The v2 entry points with masks=NULL are the version 1 calls; a version 1 library gets those.
        self.masks = _masks(attn_mask, key_lengths, str(a["causal_alignment"]), (b, hq, sq, skv)) if optional else None
        self._v2 = hasattr(lib, "sage_cuda_attention_v2_c")
        # run() passes these after the call: (masks or NULL,) to the v2 entry points, nothing to version 1.
        self._masks_args = (ctypes.byref(self.masks) if self.masks is not None else None,) if self._v2 else ()
        self._attention = lib.sage_cuda_attention_v2_c if self._v2 else lib.sage_cuda_attention_c
        err = ctypes.create_string_buffer(_ERROR_LEN)
        nbytes = ctypes.c_uint64(0)
        with torch.cuda.device(q.device):
            _check(self._c("can_implement", ctypes.byref(c), err, _ERROR_LEN), err, "SageAttention CUDA")
            _check(self._c("workspace_bytes", ctypes.byref(c), ctypes.byref(nbytes), err, _ERROR_LEN),
                   err, "SageAttention CUDA")
        self.workspace = torch.empty(max(int(nbytes.value), 1), dtype=torch.uint8, device=q.device)
        c.workspace = self.workspace.data_ptr()
        c.workspace_bytes = int(nbytes.value)
        self._call_ref = ctypes.byref(c)
        self._error_buffer = ctypes.create_string_buffer(_ERROR_LEN)

    def _c(self, name: str, call_ref: Any, *rest: Any) -> int:
        """The C entry point `name`: its v2 form with the optional inputs when the library has one."""
        suffix = "_v2_c" if self._v2 else "_c"
        return getattr(self._lib, f"sage_cuda_{name}{suffix}")(call_ref, *self._masks_args, *rest)

    def describe(self) -> str:
        """The kernel configuration the call runs (path, QK/PV types, how V is read, masks)."""
        text = ctypes.create_string_buffer(_ERROR_LEN)
        _check(self._c("describe", ctypes.byref(self.call), text, _ERROR_LEN), text, "describe")
        return text.value.decode()

    def run(self, phases: int = PHASE_ALL) -> Any:
        """Enqueues the call on the current stream; returns the output tensor. Kept lean: benchmarks time it."""
        import torch

        self.call.phases = phases
        self.call.stream = torch.cuda.current_stream(self.q.device).cuda_stream
        err = self._error_buffer
        if torch.cuda.current_device() == self.q.device.index:
            status = self._attention(self._call_ref, *self._masks_args, err, _ERROR_LEN)
        else:
            with torch.cuda.device(self.q.device):
                status = self._attention(self._call_ref, *self._masks_args, err, _ERROR_LEN)
        _check(status, err, "SageAttention CUDA")
        return self.out


def sageattn_cuda(q: Any, k: Any, v: Any, *, out: Any = None, attn_mask: Any = None, key_lengths: Any = None,
                  **attrs: Any) -> Any:
    """SageAttention on the GPU; attributes as in the op schema (layout, is_causal, causal_alignment, qk_quant,
    ...), optional inputs as CUDA tensors (docs/OP_CONTRACT.md, "Masks")."""
    return CudaAttentionCall(q, k, v, out=out, attn_mask=attn_mask, key_lengths=key_lengths, **attrs).run()


def e4m3_device(x: Any, method: int = 0) -> Any:
    """E4M3 codes (uint8 tensor) of a float32 CUDA tensor, converted on the device: method 0 is the attention
    kernel's packed PTX conversion (sm_89+), method 1 the cuda_fp8.h conversion of the V quantizer."""
    import torch

    x = x.contiguous().to(torch.float32)
    out = torch.empty(x.shape, dtype=torch.uint8, device=x.device)
    err = ctypes.create_string_buffer(_ERROR_LEN)
    with torch.cuda.device(x.device):
        status = _library().sage_cuda_e4m3_c(x.data_ptr(), out.data_ptr(), x.numel(), method,
                                              torch.cuda.current_stream(x.device).cuda_stream, err, _ERROR_LEN)
    _check(status, err, "e4m3 device conversion")
    return out


def e4m3_host(x: np.ndarray) -> np.ndarray:
    """E4M3 codes of float32 values by the C++ host implementation (sage/numerics.h)."""
    xf = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty(xf.shape, dtype=np.uint8)
    _library().sage_host_e4m3_c(xf.ctypes.data, out.ctypes.data, xf.size)
    return out
