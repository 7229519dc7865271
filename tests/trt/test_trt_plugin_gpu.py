"""The TensorRT plugin on a GPU, without TensorRT: the driver takes one plugin through TensorRT's whole life
cycle (parser fields, build queries, configurePlugin, workspace, serialize, deserialize, attach, enqueue on
a non-default stream, twice) and writes the output; it must match the NumPy reference of the contract
(cos >= 0.9999) and be close to exact float attention. Skips, saying why, without a GPU or the build."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from onnx_attributes import driver_args
from sage_export.metrics import fidelity
from sage_export.numerics import round_to_dtype
from sage_export.onnx_node import make_sage_node
from sage_export.reference import float_attention, sage_attention_reference
from sage_export.testing import gpu_effective_attrs
from sage_export.testing import make_qkv

pytestmark = pytest.mark.gpu

# (dtype, layout, (batch, q_heads, kv_heads, q_len, kv_len, head_dim), attributes)
CASES = [
    ("float16", "BNSH", (2, 8, 8, 256, 256, 128), {}),  # the contract's defaults: FP8 P~.V, per_thread, smooth_k
    ("bfloat16", "BSNH", (1, 8, 2, 384, 384, 64), {"is_causal": 1}),  # GQA, causal
    ("float16", "BSH", (2, 4, 2, 200, 333, 64), {"pv_dtype": "fp16"}),  # 3-D packed heads, ragged lengths
    ("float32", "BNSH", (1, 2, 2, 130, 70, 128), {"qk_granularity": "per_block", "smooth_q": 1}),
    ("float16", "BNSH", (1, 4, 1, 256, 256, 128), {"pv_accum": "fp16"}),  # SageAttention2++, MQA
    ("float16", "BNSH", (1, 2, 2, 200, 131, 80), {"pv_dtype": "fp16"}),  # head_dim padded inside the kernel
    ("float16", "BNSH", (1, 2, 2, 1, 77, 64), {"kernel": "sm80", "pv_dtype": "fp16"}),  # decode-like Sq = 1
    ("float16", "BSNH", (1, 4, 4, 128, 512, 128), {"kernel": "sm89", "qk_granularity": "per_warp", "smooth_k": 0}),
    # int4 Q.K^T runs as int8 on the sm90 path (docs/OP_CONTRACT.md), so it is pinned to the portable kernel.
    ("float16", "BNSH", (1, 2, 2, 256, 256, 128), {"kernel": "sm89", "qk_quant": "int4", "smooth_q": 1}),
]


def to_bytes(x: np.ndarray, dtype: str) -> bytes:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if dtype == "float32":
        return x.tobytes()
    if dtype == "float16":
        return x.astype(np.float16).tobytes()
    return (x.view(np.uint32) >> 16).astype(np.uint16).tobytes()  # values are already bf16-exact


def from_bytes(raw: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "float32":
        return np.frombuffer(raw, np.float32).reshape(shape)
    if dtype == "float16":
        return np.frombuffer(raw, np.float16).astype(np.float32).reshape(shape)
    return (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)


@pytest.mark.parametrize("dtype,layout,dims,attrs", CASES, ids=lambda c: str(c).replace(" ", ""))
def test_enqueue_matches_reference(run_driver, rng, tmp_path: Path, dtype, layout, dims, attrs):
    batch, hq, hkv, sq, skv, d = dims
    q, k, v = make_qkv(rng, batch=batch, q_heads=hq, kv_heads=hkv, q_len=sq, kv_len=skv, head_dim=d, layout=layout)
    q, k, v = (round_to_dtype(x, dtype) for x in (q, k, v))
    shape_attrs = {"q_num_heads": hq, "kv_num_heads": hkv} if layout == "BSH" else {"layout": layout}
    all_attrs = {**shape_attrs, **attrs}
    for name, x in (("query", q), ("key", k), ("value", v)):
        (tmp_path / f"{name}.bin").write_bytes(to_bytes(x, dtype))

    node = make_sage_node(["query", "key", "value"], ["output"], name="sage_gpu_node", **all_attrs)
    result = run_driver(
        "run", "--dtype", dtype, "--dir", str(tmp_path),
        "--query", ",".join(map(str, q.shape)), "--key", ",".join(map(str, k.shape)),
        "--value", ",".join(map(str, v.shape)), *driver_args(node),
    )  # fmt: skip
    print(result.stdout)
    if result.returncode == 77:
        pytest.skip(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, result.stdout

    out = from_bytes((tmp_path / "output.bin").read_bytes(), dtype, q.shape)
    assert np.isfinite(out).all(), "output has NaN/inf (the driver poisons the output buffer with NaN)"
    # What the chosen GPU path computes (contract fallbacks: e.g. auto on Hopper with smooth_q runs the
    # portable path, whose FP16 P~.V stands in for FP8).
    torch = pytest.importorskip("torch", reason="torch tells the device's compute capability")
    major, minor = torch.cuda.get_device_capability()
    ref_attrs = gpu_effective_attrs(all_attrs, major * 10 + minor)
    expected = round_to_dtype(sage_attention_reference(q, k, v, **ref_attrs), dtype)
    fid = fidelity(out, expected)
    assert fid.cos >= 0.9999, f"{dtype} {layout} {dims} {attrs}: plugin vs NumPy reference {fid}"
    exact = float_attention(q, k, v, **shape_attrs, is_causal=attrs.get("is_causal", 0))
    floor = 0.95 if attrs.get("qk_quant") == "int4" else 0.998  # int4 Q.K^T costs ~0.02 of cos by design
    assert fidelity(out, exact).cos >= floor, f"plugin vs float attention {fidelity(out, exact)}"
