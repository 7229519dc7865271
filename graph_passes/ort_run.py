"""Running a model before and after the rewrite through ONNX Runtime: inputs, sessions, fidelity, latency."""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from sage_export.metrics import Fidelity, fidelity

log = logging.getLogger(__name__)

_PROTOBUF_LIMIT = 2**31 - 2**24
Progress = Callable[[str, int, int], None]


def input_specs(model: onnx.ModelProto) -> list[tuple[str, int, list[int | str | None]]]:
    """(name, element type, dims) of every graph input that is not an initializer."""
    inits = {t.name for t in model.graph.initializer}
    out = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        dims: list[int | str | None] = []
        for d in tt.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
        out.append((vi.name, tt.elem_type, dims))
    return out


def random_inputs(
    model: onnx.ModelProto,
    dims: Mapping[str, int] | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    default_dim: int = 8,
    int_high: int = 100,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Random feeds: Gaussian floats, integers in [0, int_high), all-true booleans.

    Symbolic dimensions take ``dims[name]`` or ``default_dim``; ``shapes`` overrides whole inputs.
    """
    rng = np.random.default_rng(seed)
    dims = dict(dims or {})
    shapes = dict(shapes or {})
    feeds: dict[str, np.ndarray] = {}
    for name, elem, declared in input_specs(model):
        shape = list(
            shapes.get(name) or [d if isinstance(d, int) else dims.get(d or "", default_dim) for d in declared]
        )
        np_type = helper.tensor_dtype_to_np_dtype(elem) if elem != TensorProto.BFLOAT16 else np.float32
        if elem == TensorProto.BOOL:
            feeds[name] = np.ones(shape, dtype=bool)
        elif np.issubdtype(np_type, np.integer):
            feeds[name] = rng.integers(0, int_high, size=shape).astype(np_type)
        else:
            feeds[name] = rng.standard_normal(shape).astype(np_type)
    return feeds


def make_session(model: onnx.ModelProto, library: Path | None = None, threads: int = 0) -> Any:
    """An ORT CPU session with the SageAttention library registered (when given)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    if library is not None:
        so.register_custom_ops_library(str(library))
    from .pipeline import approx_size

    if approx_size(model) > _PROTOBUF_LIMIT:
        tmp = Path(tempfile.mkdtemp(prefix="sage_onnx_")) / "model.onnx"
        onnx.save_model(model, str(tmp), save_as_external_data=True, location="model.onnx.data")
        return ort.InferenceSession(str(tmp), so, providers=["CPUExecutionProvider"])
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def prepare_feeds(session: Any, feeds: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """bfloat16 inputs travel as OrtValues (numpy has no bf16)."""
    from sage_export.onnx_node import to_onnx_array

    out: dict[str, Any] = {}
    for i in session.get_inputs():
        value = feeds[i.name]
        out[i.name] = to_onnx_array(value, "bfloat16") if i.type == "tensor(bfloat16)" else value
    return out


@dataclass
class Timing:
    median_ms: float
    runs: int


def run_and_time(
    session: Any, feeds: Mapping[str, np.ndarray], repeat: int, label: str, progress: Progress | None = None
) -> tuple[list[np.ndarray], Timing]:
    """One warm-up run (its outputs are returned) and ``repeat`` timed runs."""
    prepared = prepare_feeds(session, feeds)
    outputs = [np.asarray(o, dtype=np.float32) if _is_float(o) else np.asarray(o) for o in session.run(None, prepared)]
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        session.run(None, prepared)
        times.append((time.perf_counter() - start) * 1e3)
        if progress is not None:
            progress(label, i + 1, repeat)
    return outputs, Timing(statistics.median(times) if times else float("nan"), repeat)


def _is_float(x: Any) -> bool:
    return isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)


@dataclass
class OutputComparison:
    name: str
    fidelity: Fidelity | None
    max_abs: float | None
    equal: bool | None = None  # for non-float outputs


def compare_outputs(
    names: Sequence[str], ref: Sequence[np.ndarray], out: Sequence[np.ndarray]
) -> list[OutputComparison]:
    result = []
    for name, r, o in zip(names, ref, out):
        if _is_float(r) and _is_float(o) and r.shape == o.shape:
            result.append(
                OutputComparison(
                    name, fidelity(o, r), float(np.max(np.abs(o.astype(np.float64) - r))) if r.size else 0.0
                )
            )
        else:
            result.append(OutputComparison(name, None, None, bool(np.array_equal(r, o))))
    return result
