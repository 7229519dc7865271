"""ctypes binding of libsage_sm90.so (plugin/cuda/sm90/host/sm90_c_api.h) for torch CUDA tensors.

Used by tests/gpu_sm90/test_sm90.py, tests/gpu_sm90/diagnose_sm90.py and bench/bench_sm90.py. The library
comes from ``plugin/cuda/sm90/build_standalone.sh`` (default ``build/sm90/libsage_sm90.so``; override with
``SAGE_SM90_LIB``).
"""

from __future__ import annotations

import ctypes
import os
import pathlib
from dataclasses import dataclass

from sage_export.schema import SCHEMA

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_LIB = ROOT / "build" / "sm90" / "libsage_sm90.so"

DTYPES = {"float32": 0, "float16": 1, "bfloat16": 2}


def _codes(attribute: str) -> dict[str, int]:
    """String attribute -> its C enum value: the position in the schema's allowed list (gen_schema.py)."""
    return {value: i for i, value in enumerate(SCHEMA.attributes[attribute].allowed)}


QK_QUANT = _codes("qk_quant")
GRANULARITY = _codes("qk_granularity")
PV_DTYPE = _codes("pv_dtype")
PV_ACCUM = _codes("pv_accum")
CAUSAL_ALIGNMENT = _codes("causal_alignment")


class _Call(ctypes.Structure):
    _fields_ = [
        ("q", ctypes.c_void_p),
        ("k", ctypes.c_void_p),
        ("v", ctypes.c_void_p),
        ("out", ctypes.c_void_p),
        ("dtype", ctypes.c_int32),
        ("batch", ctypes.c_int64),
        ("q_heads", ctypes.c_int64),
        ("kv_heads", ctypes.c_int64),
        ("q_len", ctypes.c_int64),
        ("kv_len", ctypes.c_int64),
        ("head_dim", ctypes.c_int64),
        ("strides", ctypes.c_int64 * 12),
        ("is_causal", ctypes.c_int32),
        ("qk_quant", ctypes.c_int32),
        ("qk_granularity", ctypes.c_int32),
        ("smooth_k", ctypes.c_int32),
        ("smooth_q", ctypes.c_int32),
        ("pv_dtype", ctypes.c_int32),
        ("pv_accum", ctypes.c_int32),
        ("scale", ctypes.c_float),
        ("causal_alignment", ctypes.c_int32),
    ]


@dataclass(frozen=True)
class Plan:
    head_dim_padded: int
    q8: int
    k8: int
    v8t: int
    q_scale: int
    k_scale: int
    v_scale: int
    part_ksum: int
    part_vmax: int
    kv_len16: int
    total: int


def _bhs_strides(t, layout: str) -> tuple[int, int, int]:
    """Element strides (batch, head, token) of a 4-D tensor in ``layout``; the channel stride must be 1."""
    if t.stride(-1) != 1:
        raise ValueError("the channel dimension must be contiguous")
    if layout == "BNSH":
        return t.stride(0), t.stride(1), t.stride(2)
    if layout == "BSNH":
        return t.stride(0), t.stride(2), t.stride(1)
    raise ValueError(f"layout must be BNSH or BSNH, got {layout!r}")


def _dims(t, layout: str) -> tuple[int, int, int, int]:
    """(batch, heads, tokens, head_dim)."""
    b, x, y, d = t.shape
    return (b, x, y, d) if layout == "BNSH" else (b, y, x, d)


class Sm90Library:
    def __init__(self, path: str | os.PathLike | None = None) -> None:
        path = pathlib.Path(path or os.environ.get("SAGE_SM90_LIB", DEFAULT_LIB))
        self.path = path
        self.lib = ctypes.CDLL(str(path))
        call_p = ctypes.POINTER(_Call)
        self.lib.sage_sm90_workspace_c.argtypes = [call_p]
        self.lib.sage_sm90_workspace_c.restype = ctypes.c_size_t
        self.lib.sage_sm90_can_implement_c.argtypes = [call_p, ctypes.c_char_p, ctypes.c_size_t]
        self.lib.sage_sm90_can_implement_c.restype = ctypes.c_int
        self.lib.sage_sm90_run_phase_c.argtypes = [
            call_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t
        ]
        self.lib.sage_sm90_run_phase_c.restype = ctypes.c_int
        self.lib.sage_sm90_plan_c.argtypes = [call_p, ctypes.POINTER(ctypes.c_int64)]
        self.lib.sage_sm90_plan_c.restype = None

    # -- building a call ------------------------------------------------------------------------------------
    @staticmethod
    def make_call(q, k, v, out, *, layout: str = "BNSH", scale: float = 0.0, is_causal: int = 0,
                  qk_quant: str = "int8", qk_granularity: str = "per_thread", smooth_k: int = 1,
                  smooth_q: int = 0, pv_dtype: str = "fp8_e4m3", pv_accum: str = "fp32",
                  causal_alignment: str = "top_left") -> _Call:
        import torch

        names = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
        b, hq, sq, d = _dims(q, layout)
        _, hkv, skv, _ = _dims(k, layout)
        c = _Call()
        c.q, c.k, c.v, c.out = q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr()
        c.dtype = DTYPES[names[q.dtype]]
        c.batch, c.q_heads, c.kv_heads, c.q_len, c.kv_len, c.head_dim = b, hq, hkv, sq, skv, d
        strides = []
        for t in (q, k, v, out):
            strides.extend(_bhs_strides(t, layout))
        c.strides = (ctypes.c_int64 * 12)(*strides)
        c.is_causal = is_causal
        c.qk_quant = QK_QUANT[qk_quant]
        c.qk_granularity = GRANULARITY[qk_granularity]
        c.smooth_k = smooth_k
        c.smooth_q = smooth_q
        c.pv_dtype = PV_DTYPE[pv_dtype]
        c.pv_accum = PV_ACCUM[pv_accum]
        c.scale = scale
        c.causal_alignment = CAUSAL_ALIGNMENT[causal_alignment]
        return c

    # -- entry points ------------------------------------------------------------------------------------
    def workspace_bytes(self, call: _Call) -> int:
        return int(self.lib.sage_sm90_workspace_c(ctypes.byref(call)))

    def can_implement(self, call: _Call) -> str:
        err = ctypes.create_string_buffer(1024)
        rc = self.lib.sage_sm90_can_implement_c(ctypes.byref(call), err, len(err))
        return "" if rc == 0 else err.value.decode()

    def plan(self, call: _Call) -> Plan:
        out = (ctypes.c_int64 * 11)()
        self.lib.sage_sm90_plan_c(ctypes.byref(call), out)
        return Plan(*[int(x) for x in out])

    def run(self, call: _Call, workspace, stream=None, phase: int = 0) -> None:
        """Launches on ``stream`` (default: torch's current stream); raises RuntimeError with the library's message."""
        import torch

        if stream is None:
            stream = torch.cuda.current_stream()
        err = ctypes.create_string_buffer(1024)
        rc = self.lib.sage_sm90_run_phase_c(ctypes.byref(call), ctypes.c_void_p(workspace.data_ptr()),
                                            workspace.numel() * workspace.element_size(),
                                            ctypes.c_void_p(stream.cuda_stream), phase, err, len(err))
        if rc != 0:
            raise RuntimeError(err.value.decode())

    def attention(self, q, k, v, out=None, workspace=None, **attrs):
        """Convenience: allocates out (like q) and the workspace when not given, runs, returns (out, workspace)."""
        import torch

        if out is None:
            out = torch.empty_like(q)
        call = self.make_call(q, k, v, out, **attrs)
        msg = self.can_implement(call)
        if msg:
            raise RuntimeError(msg)
        if workspace is None:
            workspace = torch.empty(max(1, self.workspace_bytes(call)), dtype=torch.uint8, device=q.device)
        self.run(call, workspace)
        return out, workspace


def load_or_skip_reason() -> tuple[Sm90Library | None, str]:
    """The library and "" when the GPU tests can run here, else (None, why not)."""
    try:
        import torch
    except ImportError:
        return None, "torch is not installed"
    if not torch.cuda.is_available():
        return None, "no CUDA GPU visible to torch"
    major, minor = torch.cuda.get_device_capability()
    if (major, minor) != (9, 0):
        return None, f"the sm90 kernel needs an sm_90 GPU; this one is sm_{major}{minor}"
    path = pathlib.Path(os.environ.get("SAGE_SM90_LIB", DEFAULT_LIB))
    if not path.exists():
        return None, f"{path} not found: build it with plugin/cuda/sm90/build_standalone.sh"
    try:
        return Sm90Library(path), ""
    except OSError as e:
        return None, f"cannot load {path}: {e}"
