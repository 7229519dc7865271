"""The CUDA runner against the NumPy reference of docs/OP_CONTRACT.md and against float attention.

Every call writes into an output poisoned with NaN, on fresh random inputs (the seed is printed on failure).
The GPU must match the simulated-quantization reference to cos >= 0.9999 for every attribute combination and
shape class; the remaining differences are float rounding order, exp2 approximations and the FP8 MMA's 22-bit
accumulator.
"""
from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

torch = pytest.importorskip("torch")

from sage_export.metrics import fidelity  # noqa: E402
from sage_export.numerics import round_to_dtype  # noqa: E402
from sage_export.reference import float_attention, sage_attention_reference  # noqa: E402
from sage_export.testing import gpu_effective_attrs, make_qkv, run_under_sanitizer  # noqa: E402

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
COS_VS_REFERENCE = 0.9999


def _to_device(x: np.ndarray, dtype: str):
    """The CUDA tensor, and the float32 values it holds (what the reference must see)."""
    t = torch.from_numpy(np.ascontiguousarray(x)).to("cuda", TORCH_DTYPES[dtype])
    return t, t.float().cpu().numpy()


def _reference_attrs(attrs: dict, arch: int) -> dict:
    """What the GPU computes for `attrs` on this device (contract GPU fallbacks)."""
    return gpu_effective_attrs(attrs, arch)


def run_gpu(cuda_api, q, k, v, dtype: str, **attrs):
    """GPU output (float32 numpy) and the float32 inputs as the device holds them."""
    qt, qf = _to_device(q, dtype)
    kt, kf = _to_device(k, dtype)
    vt, vf = _to_device(v, dtype)
    out = torch.full_like(qt, float("nan"))
    cuda_api.sageattn_cuda(qt, kt, vt, out=out, **attrs)
    torch.cuda.synchronize()
    return out.float().cpu().numpy(), (qf, kf, vf)


def check_vs_reference(cuda_api, arch, rng, *, dtype="float16", layout="BNSH", outliers=False, shape, **attrs):
    batch, q_heads, kv_heads, q_len, kv_len, head_dim = shape
    q, k, v = make_qkv(rng, batch=batch, q_heads=q_heads, kv_heads=kv_heads, q_len=q_len, kv_len=kv_len,
                       head_dim=head_dim, layout=layout, outliers=outliers)
    heads = {"q_num_heads": q_heads, "kv_num_heads": kv_heads} if layout == "BSH" else {}
    op_layout = "BNSH" if layout == "BSH" else layout
    out, (qf, kf, vf) = run_gpu(cuda_api, q, k, v, dtype, layout=op_layout, **heads, **attrs)
    assert not np.isnan(out).any(), "output has NaN (unwritten or poisoned elements)"
    ref = round_to_dtype(sage_attention_reference(qf, kf, vf, layout=op_layout, **heads,
                                                  **_reference_attrs(attrs, arch)), dtype)
    fid = fidelity(out, ref)
    assert fid.cos >= COS_VS_REFERENCE, f"{shape} {layout} {dtype} {attrs}: {fid}"
    return fid


# --- every attribute combination -----------------------------------------------------------------------

ATTR_GRID = list(itertools.product(
    ("int8", "int4"), ("per_thread", "per_warp", "per_block"), (0, 1), (0, 1),
    ("fp8_e4m3", "fp16"), ("fp32", "fp16"), ("sm80", "sm89")))


@pytest.mark.parametrize("head_dim", [64, 128])
def test_every_attribute_combination(cuda_api, device_arch, rng, head_dim):
    """All 192 combinations of qk_quant, granularity, smooth_k, smooth_q, pv_dtype, pv_accum and kernel, on a
    GQA shape with two ragged query tiles and a ragged last KV block."""
    worst = None
    for qk_quant, gran, smooth_k, smooth_q, pv_dtype, pv_accum, kernel in ATTR_GRID:
        if kernel == "sm89" and device_arch < 89:
            continue
        fid = check_vs_reference(
            cuda_api, device_arch, rng, shape=(1, 4, 2, 200, 200, head_dim), qk_quant=qk_quant,
            qk_granularity=gran, smooth_k=smooth_k, smooth_q=smooth_q, pv_dtype=pv_dtype, pv_accum=pv_accum,
            kernel=kernel)
        worst = fid if worst is None or fid.cos < worst.cos else worst
    print(f"head_dim {head_dim}: worst over the grid {worst}")


# --- shape classes ---------------------------------------------------------------------------------------

SHAPES = {
    "mha_square": (2, 2, 2, 256, 256, 64),
    "gqa": (1, 8, 2, 130, 130, 128),
    "mqa": (1, 4, 1, 64, 64, 64),
    "q_shorter": (1, 2, 2, 100, 300, 64),
    "q_longer": (1, 2, 2, 300, 70, 128),
    "head_dim_32": (1, 2, 2, 96, 96, 32),
    "head_dim_80": (1, 2, 1, 160, 160, 80),
    "head_dim_17": (1, 2, 2, 40, 40, 17),
    "ragged_lengths": (2, 2, 2, 333, 333, 128),
    "single_token": (1, 2, 2, 1, 1, 64),
    "decode_step": (2, 4, 2, 1, 257, 128),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
@pytest.mark.parametrize("kernel", ["sm80", "sm89"])
def test_shape_classes(cuda_api, device_arch, rng, name, kernel):
    if kernel == "sm89" and device_arch < 89:
        pytest.skip("sm89 path needs sm_89+")
    shape = SHAPES[name]
    for causal in (0, 1):  # causal is defined for any q_len, kv_len (top_left; both alignments: test_masks_gpu)
        check_vs_reference(cuda_api, device_arch, rng, shape=shape, kernel=kernel, is_causal=causal)


@pytest.mark.parametrize("layout", ["BNSH", "BSNH", "BSH"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_layouts_and_dtypes(cuda_api, device_arch, rng, layout, dtype):
    for pv_dtype in ("fp8_e4m3", "fp16"):
        check_vs_reference(cuda_api, device_arch, rng, dtype=dtype, layout=layout, shape=(2, 4, 2, 150, 150, 64),
                           pv_dtype=pv_dtype, is_causal=1)


def test_strided_views(cuda_api, device_arch, rng):
    """Q, K, V as views into one packed (B, S, 3, H, D) tensor: strides that are not those of any layout."""
    b, s, h, d = 2, 190, 4, 64
    qkv = rng.standard_normal((b, s, 3, h, d)).astype(np.float32)
    t = torch.from_numpy(qkv).to("cuda", torch.float16)
    q, k, v = t[:, :, 0], t[:, :, 1], t[:, :, 2]  # BSNH views, token stride 3*H*D
    for pv_dtype in ("fp16", "fp8_e4m3"):
        out = torch.full((b, s, h, d), float("nan"), dtype=torch.float16, device="cuda")
        cuda_api.sageattn_cuda(q, k, v, out=out, layout="BSNH", pv_dtype=pv_dtype)
        torch.cuda.synchronize()
        ref = sage_attention_reference(q.float().cpu().numpy(), k.float().cpu().numpy(), v.float().cpu().numpy(),
                                       layout="BSNH", **_reference_attrs({"pv_dtype": pv_dtype}, device_arch))
        fid = fidelity(out.float().cpu().numpy(), round_to_dtype(ref, "float16"))
        assert fid.cos >= COS_VS_REFERENCE, fid


def test_outliers_and_smoothing(cuda_api, device_arch, rng):
    """With outlier channels the GPU still follows the reference, and smooth_k is what keeps it close to float
    attention."""
    shape = (1, 4, 4, 256, 256, 128)
    for smooth_k, smooth_q in ((0, 0), (1, 0), (1, 1)):
        check_vs_reference(cuda_api, device_arch, rng, outliers=True, shape=shape, smooth_k=smooth_k,
                           smooth_q=smooth_q, qk_quant="int4")
    q, k, v = make_qkv(rng, batch=1, q_heads=4, kv_heads=4, q_len=256, kv_len=256, head_dim=128, outliers=True)
    exact = float_attention(q, k, v)
    cos = {}
    for smooth_k in (0, 1):
        out, _ = run_gpu(cuda_api, q, k, v, "float16", smooth_k=smooth_k)
        cos[smooth_k] = fidelity(out, exact).cos
    print(f"int8 vs float attention with K outliers: smooth_k=0 cos {cos[0]:.6f}, smooth_k=1 cos {cos[1]:.6f}")
    assert cos[1] > cos[0]


# --- against float attention (docs/OP_CONTRACT.md, Accuracy to expect) -----------------------------------

@pytest.mark.parametrize("kernel", ["auto", "sm80", "sm89"])
def test_vs_float_attention(cuda_api, device_arch, rng, kernel):
    if kernel == "sm89" and device_arch < 89:
        pytest.skip("sm89 path needs sm_89+")
    q, k, v = make_qkv(rng, batch=1, q_heads=4, kv_heads=4, q_len=1024, kv_len=1024, head_dim=128)
    exact = float_attention(q, k, v)
    defaults, _ = run_gpu(cuda_api, q, k, v, "float16", kernel=kernel)
    fp16_pv, _ = run_gpu(cuda_api, q, k, v, "float16", kernel=kernel, pv_dtype="fp16")
    f_def, f_16 = fidelity(defaults, exact), fidelity(fp16_pv, exact)
    print(f"kernel {kernel}: defaults {f_def}; int8 + fp16 P~.V {f_16}")
    assert f_def.cos >= 0.999
    assert f_16.cos >= 0.9999


# --- runner behaviour ------------------------------------------------------------------------------------

def test_cuda_graph_capture_and_replay(cuda_api, device_arch, rng):
    """The whole runner call captures into a CUDA graph; replays on new inputs give the new results."""
    shape = dict(batch=1, q_heads=4, kv_heads=2, q_len=300, kv_len=300, head_dim=128)
    q, k, v = make_qkv(rng, **shape)
    qt, kt, vt = (torch.from_numpy(x).to("cuda", torch.float16) for x in (q, k, v))
    call = cuda_api.CudaAttentionCall(qt, kt, vt, is_causal=1)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        call.run()  # warm-up outside capture (sets function attributes once)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        call.run()
    for _ in range(2):
        q2, k2, v2 = make_qkv(rng, **shape)
        for dst, src in zip((qt, kt, vt), (q2, k2, v2)):
            dst.copy_(torch.from_numpy(src))
        call.out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        ref = sage_attention_reference(qt.float().cpu().numpy(), kt.float().cpu().numpy(), vt.float().cpu().numpy(),
                                       is_causal=1, **_reference_attrs({}, device_arch))
        fid = fidelity(call.out.float().cpu().numpy(), round_to_dtype(ref, "float16"))
        assert fid.cos >= COS_VS_REFERENCE, fid


def test_errors_name_the_problem(cuda_api, device_arch):
    q = torch.zeros(1, 2, 8, 64, device="cuda", dtype=torch.float16)
    # The Hopper path refuses fp16 P~.V (and anything on a non-sm_90 device) with a message naming it.
    with pytest.raises(RuntimeError, match="pv_dtype" if device_arch == 90 else "sm_90|sm90"):
        cuda_api.sageattn_cuda(q, q, q, kernel="sm90", pv_dtype="fp16")
    big = torch.zeros(1, 2, 8, 160, device="cuda", dtype=torch.float16)
    with pytest.raises(RuntimeError, match="head_dim"):
        cuda_api.sageattn_cuda(big, big, big)


def test_describe_reports_the_path(cuda_api, device_arch):
    q = torch.zeros(1, 2, 8, 64, device="cuda", dtype=torch.float16)
    assert "sm80" in cuda_api.CudaAttentionCall(q, q, q, kernel="sm80").describe()
    text = cuda_api.CudaAttentionCall(q, q, q).describe()
    if device_arch == 89:
        assert "sm89" in text and "fp8_e4m3" in text, text
    else:  # sm_80-88; Hopper: the portable auto path is sm80 (FP8 mma.sync is emulated there), or the sm90 kernel
        assert "sm80" in text or "sm90" in text, text


def test_empty_query(cuda_api):
    q = torch.zeros(1, 2, 0, 64, device="cuda", dtype=torch.float16)
    k = torch.randn(1, 2, 5, 64, device="cuda", dtype=torch.float16)
    assert cuda_api.sageattn_cuda(q, k, k).shape == q.shape


# --- FP8 conversion: device == host, bit for bit ----------------------------------------------------------

def _e4m3_probe_values(rng) -> np.ndarray:
    codes = np.arange(256, dtype=np.uint8)
    codes = codes[(codes & 0x7F) != 0x7F]  # drop NaN codes
    from sage_export.numerics import e4m3_decode

    exact = e4m3_decode(codes).astype(np.float32)
    grid = np.sort(np.unique(np.abs(exact)))
    mids = ((grid[1:] + grid[:-1]) / 2).astype(np.float32)  # ties: round to even
    near = np.concatenate([np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(-np.inf))])
    special = np.array([0.0, -0.0, np.inf, -np.inf, 448, 449, 464, 465, 480, 1e30, 2**-10, 2**-9, 3 * 2**-11,
                        2**-6, 2**-7], dtype=np.float32)
    bits = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    bits = bits[np.isfinite(bits)]
    wide = (rng.standard_normal(200_000) * 100).astype(np.float32)
    small = (rng.standard_normal(100_000) * 2**-8).astype(np.float32)
    values = np.concatenate([exact, mids, near, special, bits, wide, small]).astype(np.float32)
    return np.concatenate([values, -values])


@pytest.mark.parametrize("method", [0, 1])
def test_e4m3_device_conversion_is_bit_exact(cuda_api, device_arch, rng, method):
    if method == 0 and device_arch < 89:
        pytest.skip("the packed PTX conversion needs sm_89+")
    x = _e4m3_probe_values(rng)
    host = cuda_api.e4m3_host(x)
    device = cuda_api.e4m3_device(torch.from_numpy(x).cuda(), method).cpu().numpy()
    bad = np.flatnonzero(host != device)
    assert bad.size == 0, f"{bad.size} mismatches, e.g. x={x[bad[:5]]} host={host[bad[:5]]} device={device[bad[:5]]}"
    from sage_export.numerics import e4m3_encode

    np.testing.assert_array_equal(e4m3_encode(x), host)


# --- compute-sanitizer ------------------------------------------------------------------------------------

def test_memcheck_small_cases(cuda_api):
    """compute-sanitizer memcheck over small calls of every kernel family (tests/gpu/memcheck_cases.py)."""
    sanitizer = shutil.which("compute-sanitizer")
    if sanitizer is None:
        pytest.skip("compute-sanitizer is not on PATH")
    script = Path(__file__).with_name("memcheck_cases.py")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    returncode, tail = run_under_sanitizer(sanitizer, "memcheck", script, env)
    print(tail)
    assert returncode == 0, tail
    assert "ERROR SUMMARY: 0 errors" in tail
