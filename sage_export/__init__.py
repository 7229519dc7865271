"""SageAttention for ONNX Runtime and TensorRT: library paths, the op contract, export helpers."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ort_library_path", "trt_library_path", "OP_DOMAIN", "OP_NAME", "OP_VERSION"]

_PACKAGE_DIR = Path(__file__).resolve().parent
_ORT_LIBRARY = "libsage_attention_ort.so"
_TRT_LIBRARY = "libsage_attention_trt.so"
_DISTRIBUTION = "sage-attention-onnx"


def _installed_copies(file_name: str) -> list[Path]:
    """The library inside the installed distribution, for when a source checkout shadows it on sys.path
    (e.g. `python -m pytest` from the repository root after `pip install .`)."""
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        return [Path(str(distribution(_DISTRIBUTION).locate_file(f"sage_export/lib/{file_name}")))]
    except (PackageNotFoundError, ImportError):
        return []


def _find_library(file_name: str, env_var: str, build_subdir: str) -> Path:
    """The library from $env_var, the installed package, or a source checkout's build/ folder, in that order."""
    override = os.environ.get(env_var)
    if override:
        path = Path(override).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"{env_var}={override} does not name a file")
        return path
    candidates = [_PACKAGE_DIR / "lib" / file_name, *_installed_copies(file_name), _PACKAGE_DIR.parent / "build" / build_subdir / file_name]
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"{file_name} not found (tried {tried}). Install the package (`pip install .`), build it with CMake "
        f"into build/, or set {env_var}."
    )


def ort_library_path() -> Path:
    """Path of the ONNX Runtime custom-op library; pass it to SessionOptions.register_custom_ops_library."""
    return _find_library(_ORT_LIBRARY, "SAGE_ORT_LIBRARY", "plugin/ort")


def trt_library_path() -> Path:
    """Path of the TensorRT plugin library (built only when TensorRT headers were available)."""
    return _find_library(_TRT_LIBRARY, "SAGE_TRT_LIBRARY", "plugin/trt")


from .schema import OP_DOMAIN, OP_NAME, OP_VERSION  # noqa: E402
