"""The op on ONNX Runtime's CUDA execution provider: placement, agreement with the CPU op and with float
attention, bf16/fp16/fp32, layouts, and CUDA-graph replay with new inputs. Needs onnxruntime-gpu and a GPU."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from op_runner import rounded_inputs, run_sage
from sage_export.metrics import fidelity
from sage_export.onnx_node import create_session, single_node_model
from sage_export.reference import float_attention
from sage_export.testing import gpu_effective_attrs, make_qkv

pytestmark = pytest.mark.gpu
CUDA = ("CUDAExecutionProvider", "CPUExecutionProvider")


def device_arch() -> int:
    import torch

    major, minor = torch.cuda.get_device_capability()
    return major * 10 + minor


def effective_attrs(attrs: dict) -> dict:
    return gpu_effective_attrs(attrs, device_arch())


def run_cuda(q, k, v, dtype="float16", **attrs):
    return run_sage(q, k, v, dtype=dtype, providers=CUDA, **attrs)


@pytest.mark.parametrize("kernel", ["auto", "sm80", "sm89", "sm90"])
@pytest.mark.parametrize(
    "attrs",
    [
        {},
        {"pv_dtype": "fp16"},
        {"pv_accum": "fp16"},
        {"pv_dtype": "fp16", "pv_accum": "fp16"},
        {"qk_quant": "int4", "smooth_q": 1},
        {"qk_granularity": "per_warp", "smooth_k": 0},
        {"qk_granularity": "per_block", "is_causal": 1},
    ],
)
def test_cuda_matches_cpu_op(cuda_library, rng, kernel, attrs):
    q, k, v = rounded_inputs(
        make_qkv(rng, batch=2, q_heads=8, kv_heads=2, q_len=300, kv_len=300, head_dim=128, outliers=True), "float16"
    )
    if kernel == "sm90" and (device_arch() != 90 or attrs.get("smooth_q") or attrs.get("pv_dtype") == "fp16"):
        pytest.skip("the sm90 path needs an sm_90 GPU and refuses smooth_q and fp16 P~.V (see tests/gpu)")
    gpu = run_cuda(q, k, v, kernel=kernel, **attrs)
    cpu_attrs = {a: x for a, x in effective_attrs({**attrs, "kernel": kernel}).items() if a != "kernel"}
    cpu = run_sage(q, k, v, dtype="float16", **cpu_attrs)
    fid = fidelity(gpu, cpu)
    assert fid.cos >= 0.9999, f"kernel={kernel} {attrs}: GPU vs CPU op {fid}"


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("layout", ["BNSH", "BSNH", "BSH"])
@pytest.mark.parametrize("head_dim,q_len,kv_len", [(64, 1, 77), (80, 200, 131), (32, 129, 129), (128, 1024, 1024)])
def test_cuda_shapes_against_float_attention(cuda_library, rng, dtype, layout, head_dim, q_len, kv_len):
    q, k, v = rounded_inputs(
        make_qkv(rng, batch=1, q_heads=4, kv_heads=2, q_len=q_len, kv_len=kv_len, head_dim=head_dim, layout=layout), dtype
    )
    shape_attrs = {"q_num_heads": 4, "kv_num_heads": 2} if layout == "BSH" else {"layout": layout}
    gpu = run_cuda(q, k, v, dtype=dtype, pv_dtype="fp16", **shape_attrs)
    cpu = run_sage(q, k, v, dtype=dtype, pv_dtype="fp16", **shape_attrs)
    assert fidelity(gpu, cpu).cos >= 0.9999, fidelity(gpu, cpu)
    exact = float_attention(q, k, v, **shape_attrs)
    assert fidelity(gpu, exact).cos >= 0.999, fidelity(gpu, exact)


def test_defaults_fidelity_d128_n1024(cuda_library, rng):
    q, k, v = rounded_inputs(make_qkv(rng, batch=1, q_heads=8, kv_heads=8, q_len=1024, kv_len=1024, head_dim=128), "float16")
    exact = float_attention(q, k, v)
    assert fidelity(run_cuda(q, k, v), exact).cos >= 0.999
    assert fidelity(run_cuda(q, k, v, pv_dtype="fp16"), exact).cos >= 0.9999


def test_node_runs_on_cuda_ep(cuda_library, tmp_path):
    model = single_node_model([1, 4, 256, 64], [1, 4, 256, 64], [1, 4, 256, 64], dtype="float16", name="sage_on_gpu")
    sess = create_session(model, providers=CUDA, enable_profiling=True, profile_file_prefix=str(tmp_path / "prof"))
    x = np.random.default_rng(0).standard_normal((1, 4, 256, 64)).astype(np.float16)
    sess.run(None, {"query": x, "key": x, "value": x})
    events = json.loads(Path(sess.end_profiling()).read_text())
    providers = {e["args"].get("provider") for e in events if e.get("name", "").startswith("sage_on_gpu")}
    assert "CUDAExecutionProvider" in providers, f"SageAttention node ran on {providers}"


def test_cuda_graph_replay_with_new_inputs(cuda_library, rng):
    import onnxruntime as ort

    shape = (1, 4, 200, 64)
    model = single_node_model(shape, shape, shape, dtype="float16", name="sage_graph", pv_dtype="fp16")
    sess = create_session(model, providers=[("CUDAExecutionProvider", {"enable_cuda_graph": "1"}), "CPUExecutionProvider"])
    device = {n: ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float16, "cuda", 0) for n in ("query", "key", "value", "output")}
    binding = sess.io_binding()
    for n in ("query", "key", "value"):
        binding.bind_ortvalue_input(n, device[n])
    binding.bind_ortvalue_output("output", device["output"])
    for step in range(3):  # first run captures the graph, later runs replay it on new data
        q, k, v = (x.astype(np.float16) for x in make_qkv(rng, batch=1, q_heads=4, kv_heads=4, q_len=200, kv_len=200, head_dim=64))
        for n, x in (("query", q), ("key", k), ("value", v)):
            device[n].update_inplace(x)
        device["output"].update_inplace(np.full(shape, np.nan, np.float16))  # poison
        sess.run_with_iobinding(binding)
        out = device["output"].numpy().astype(np.float32)
        expected = run_sage(q.astype(np.float32), k.astype(np.float32), v.astype(np.float32), dtype="float16", pv_dtype="fp16")
        assert fidelity(out, expected).cos >= 0.9999, f"replay {step}: {fidelity(out, expected)}"
