"""What build_engine.py and run_engine.py share: loading the SageAttention plugin library into a TensorRT
plugin registry, and reading --shapes arguments."""
from __future__ import annotations

from pathlib import Path

import tensorrt as trt

PLUGIN_NAME, PLUGIN_VERSION, PLUGIN_NAMESPACE = "SageAttention", "1", ""


def default_plugin_path() -> Path:
    """libsage_attention_trt.so from $SAGE_TRT_LIBRARY, the installed package or build/plugin/trt."""
    from sage_export import trt_library_path

    return trt_library_path()


def load_sage_plugin(registry: trt.IPluginRegistry, path: Path) -> None:
    """Loads the plugin library into `registry` (the builder's before parsing, the runtime's before
    deserializing). The library exports getCreators/setLoggerFinder and has no static registrar, so it must
    be loaded through the registry: dlopen (ctypes) plus init_libnvinfer_plugins would register nothing."""
    if registry.get_creator(PLUGIN_NAME, PLUGIN_VERSION, PLUGIN_NAMESPACE) is not None:
        return  # builder and runtime may share one registry; loading twice fails ("already registered")
    if registry.load_library(str(path)) is None:
        raise RuntimeError(f"TensorRT could not load the plugin library {path} (see the TensorRT log above)")
    if registry.get_creator(PLUGIN_NAME, PLUGIN_VERSION, PLUGIN_NAMESPACE) is None:
        raise RuntimeError(f"{path} loaded but registered no {PLUGIN_NAME} v{PLUGIN_VERSION} creator")


def parse_shapes(specs: list[str]) -> dict[str, list[tuple[int, ...]]]:
    """`name:MIN[,OPT,MAX]` with dims joined by `x` (1x8x128x64) -> {name: [min, opt, max]}."""
    shapes = {}
    for spec in specs:
        name, sep, dims = spec.rpartition(":")
        if not sep:
            raise ValueError(f"--shapes {spec!r}: expected name:MIN[,OPT,MAX], e.g. query:1x8x128x64,1x8x1024x64,1x8x4096x64")
        triple = [tuple(int(d) for d in s.split("x")) for s in dims.split(",")]
        if len(triple) == 1:
            triple *= 3
        if len(triple) != 3:
            raise ValueError(f"--shapes {spec!r}: give one shape or three (min,opt,max)")
        shapes[name] = triple
    return shapes


def trt_major_version() -> int:
    return int(trt.__version__.split(".")[0])
