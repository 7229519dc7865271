"""Fixtures of the ORT CUDA EP tests."""
from __future__ import annotations

import ctypes
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cuda_library(ort_library: Path) -> Path:
    """The op library, when onnxruntime has the CUDA EP and the library was built with CUDA."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (install onnxruntime-gpu on a GPU machine)")
    lib = ctypes.CDLL(str(ort_library))
    if not hasattr(lib, "sage_cuda_attention_c"):
        pytest.skip(f"{ort_library} was built without CUDA")
    try:
        ort.preload_dlls()
    except Exception:  # noqa: BLE001 - older wheels lack preload_dlls; CUDA libs then come from the system
        pass
    return ort_library
