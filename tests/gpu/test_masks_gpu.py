"""attn_mask, key_lengths and causal alignment (docs/OP_CONTRACT.md, "Masks") on the CUDA kernels.

Every mask form and both causal alignments, on every kernel path (sm80, sm89 and the Hopper sm90 kernel; a path
the GPU cannot run is skipped with the reason printed), against float attention with the same mask (cos >= 0.999)
and against the NumPy reference of the contract (cos >= 0.9999). Fully masked rows give exactly 0, padding values
never change the output, and key_lengths stay on the device (a captured CUDA graph follows new lengths). Every
output is poisoned with NaN before the run. Structure follows tests/test_masks.py.
"""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

torch = pytest.importorskip("torch")

from sage_export.metrics import fidelity  # noqa: E402
from sage_export.numerics import round_to_dtype  # noqa: E402
from sage_export.reference import float_attention, sage_attention_reference  # noqa: E402
from sage_export.testing import gpu_effective_attrs, make_qkv  # noqa: E402

B, HQ, HKV, D = 3, 4, 2, 64
KERNELS = ("sm80", "sm89", "sm90")
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
COS_VS_REFERENCE = 0.9999
COS_VS_FLOAT = 0.999


def _skip(reason: str) -> None:
    print(f"skipped: {reason}")
    pytest.skip(reason)


def _need_path(kernel: str, arch: int) -> None:
    if kernel == "sm89" and arch < 89:
        _skip(f"the sm89 path needs sm_89+; this GPU is sm_{arch}")
    if kernel == "sm90" and arch != 90:
        _skip(f"the sm90 (Hopper) path needs an sm_90 GPU; this GPU is sm_{arch}")


def _reference_attrs(attrs: dict, kernel: str, arch: int = 90) -> dict:
    """What the path computes (contract, GPU section): fp8 P~.V on the sm80 path runs fp16; the sm90 path runs
    int4 as int8 (and pv_accum fp16 with an fp32 accumulator, keeping the fp16 configuration's V codes)."""
    eff = gpu_effective_attrs({**attrs, "kernel": kernel}, arch)
    eff.pop("kernel")
    return eff


def _device(x: np.ndarray, dtype: str):
    """CUDA tensor of `dtype` and the float32 values it holds."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to("cuda", TORCH_DTYPES[dtype])
    return t, t.float().cpu().numpy()


def _device_mask(mask: np.ndarray | None, mask_dtype: str | None):
    if mask is None:
        return None
    if mask.dtype == np.bool_:
        return torch.from_numpy(np.ascontiguousarray(mask)).cuda()
    dtype = mask_dtype or str(mask.dtype)
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)).to("cuda", TORCH_DTYPES[dtype])


def run_gpu(cuda_api, q, k, v, dtype="float16", attn_mask=None, key_lengths=None, mask_dtype=None, **attrs):
    """GPU output (float32 numpy; written into a NaN-poisoned tensor) and the inputs as the device holds them."""
    (qt, qf), (kt, kf), (vt, vf) = (_device(x, dtype) for x in (q, k, v))
    out = torch.full_like(qt, float("nan"))
    lengths = None if key_lengths is None else torch.from_numpy(np.asarray(key_lengths)).cuda()
    cuda_api.sageattn_cuda(qt, kt, vt, out=out, attn_mask=_device_mask(attn_mask, mask_dtype), key_lengths=lengths,
                           **attrs)
    torch.cuda.synchronize()
    return out.float().cpu().numpy(), (qf, kf, vf)


def compare(cuda_api, kernel, q, k, v, dtype="float16", attn_mask=None, key_lengths=None, mask_dtype=None,
            cos_float=COS_VS_FLOAT, **attrs):
    """Runs the GPU and checks it against the NumPy reference and (unless cos_float is None) against float
    attention with the same mask."""
    out, (qf, kf, vf) = run_gpu(cuda_api, q, k, v, dtype, attn_mask, key_lengths, mask_dtype, kernel=kernel, **attrs)
    assert not np.isnan(out).any(), "output has NaN (unwritten or poisoned elements)"
    ref_mask = attn_mask
    if attn_mask is not None and mask_dtype == "bfloat16":
        ref_mask = round_to_dtype(attn_mask.astype(np.float32), "bfloat16")
    ref = round_to_dtype(sage_attention_reference(qf, kf, vf, attn_mask=ref_mask, key_lengths=key_lengths,
                                                  **_reference_attrs(attrs, kernel)), dtype)
    fid = fidelity(out, ref)
    assert fid.cos >= COS_VS_REFERENCE, f"{kernel} {dtype} {attrs}: GPU vs NumPy reference {fid}"
    if cos_float is None:
        return out, None
    causal = {a: attrs[a] for a in ("is_causal", "causal_alignment") if a in attrs}
    exact = float_attention(qf, kf, vf, attn_mask=ref_mask, key_lengths=key_lengths, **causal)
    fe = fidelity(out, exact)
    assert fe.cos >= cos_float, f"{kernel} {dtype} {attrs}: GPU vs float attention {fe}"
    return out, exact


def key_padding(rng, skv):
    lengths = rng.integers(1, skv + 1, size=B)
    lengths[0] = skv
    return np.arange(skv)[None, :] < lengths[:, None], lengths


def mask_forms(rng, sq, skv):
    """(name, attn_mask, key_lengths, mask_dtype) for every supported form."""
    pad, lengths = key_padding(rng, skv)
    holes = pad & (rng.random((B, skv)) > 0.2)
    holes[:, 0] = True
    general = rng.random((B, 1, sq, skv)) > 0.3
    additive = np.where(rng.random((B, HQ, sq, skv)) > 0.2, rng.standard_normal((B, HQ, sq, skv)), -np.inf)
    bert = np.where(pad, 0.0, -10000.0).astype(np.float32)[:, None, None, :]
    half = np.where(rng.random((1, HQ, sq, skv)) > 0.25, rng.standard_normal((1, HQ, sq, skv)), -np.inf)
    bf16_2d = np.where(pad, rng.standard_normal((B, skv)), -np.inf).astype(np.float32)
    return [
        ("bool_key_padding_2d", pad, None, None),
        ("bool_key_padding_4d", pad[:, None, None, :], None, None),
        ("bool_key_padding_with_holes", holes, None, None),
        ("bool_key_padding_with_holes_and_lengths", holes, lengths.astype(np.int32), None),
        ("bool_general_b1sk", general, None, None),
        ("additive_f32_bhsk_with_neg_inf", additive.astype(np.float32), None, None),
        ("additive_f32_bert_extended", bert, None, None),
        ("additive_f16_1hsk", half.astype(np.float16), None, None),
        ("additive_bf16_2d", bf16_2d, None, "bfloat16"),
        ("key_lengths_int32", None, lengths.astype(np.int32), None),
        ("key_lengths_int64_and_general_mask", general, lengths.astype(np.int64), None),
    ]


N_FORMS = 11


@pytest.mark.parametrize("form", range(N_FORMS))
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("kernel", KERNELS)
def test_mask_forms(cuda_api, device_arch, rng, kernel, dtype, form):
    _need_path(kernel, device_arch)
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=96, kv_len=150, head_dim=D, outliers=True)
    _, attn_mask, lengths, mask_dtype = mask_forms(rng, 96, 150)[form]
    compare(cuda_api, kernel, q, k, v, dtype, attn_mask, lengths, mask_dtype)


# Attribute combinations on the mask kernels (smooth-Q, INT4, per_block / per_warp groups, fp16 accumulators,
# head_dim 128), each with a key-padding mask with holes, a general additive mask and key_lengths. Against the
# reference only: INT4 or smooth_k = 0 on outlier inputs are far from float attention by design (cos 0.97-0.999).
ATTRS = [
    {"smooth_q": 1, "qk_quant": "int4"},
    {"qk_granularity": "per_block", "pv_accum": "fp16"},
    {"qk_granularity": "per_warp", "smooth_k": 0, "pv_dtype": "fp16"},
    {"smooth_q": 1, "pv_dtype": "fp16", "pv_accum": "fp16", "is_causal": 1, "causal_alignment": "bottom_right"},
]


# The Hopper path runs FP8 P~.V without smooth_q only (it refuses the others): its own combinations.
ATTRS_SM90 = [
    {"qk_quant": "int4"},
    {"qk_granularity": "per_block", "pv_accum": "fp16"},
    {"qk_granularity": "per_warp", "smooth_k": 0},
    {"is_causal": 1, "causal_alignment": "bottom_right"},
    {"is_causal": 1, "causal_alignment": "top_left", "qk_granularity": "per_warp"},
]
KERNEL_ATTRS = [(k, a) for k in KERNELS for a in (ATTRS_SM90 if k == "sm90" else ATTRS)]


def _attrs_id(a: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in a.items())


@pytest.mark.parametrize("kernel,attrs", KERNEL_ATTRS, ids=[f"{k}-{_attrs_id(a)}" for k, a in KERNEL_ATTRS])
@pytest.mark.parametrize("head_dim", [64, 128])
def test_attributes_with_masks(cuda_api, device_arch, rng, kernel, head_dim, attrs):
    _need_path(kernel, device_arch)
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=100, kv_len=160, head_dim=head_dim,
                       outliers=True)
    forms = {name: (m, n, t) for name, m, n, t in mask_forms(rng, 100, 160)}
    for name in ("bool_key_padding_with_holes_and_lengths", "additive_f32_bhsk_with_neg_inf", "key_lengths_int32"):
        attn_mask, lengths, mask_dtype = forms[name]
        compare(cuda_api, kernel, q, k, v, "float16", attn_mask, lengths, mask_dtype, cos_float=None, **attrs)


def causal_mask_forms(rng, sq, skv):
    """(name, attn_mask, key_lengths, mask_dtype): masks combined with causal masking. Lengths include 0 and values
    past Skv (clamped); the holes mask has a batch without any valid key; the general masks broadcast over heads
    (bool) or batches (additive fp16)."""
    lengths = rng.integers(1, skv + 1, size=B)
    lengths[0], lengths[1] = skv + 7, 0
    holes = rng.random((B, skv)) > 0.3
    holes[2] = False
    general = rng.random((B, 1, sq, skv)) > 0.3
    additive = np.where(rng.random((1, HQ, sq, skv)) > 0.2, rng.standard_normal((1, HQ, sq, skv)), -np.inf)
    return [
        ("key_lengths_int64_with_0_and_past_skv", None, lengths.astype(np.int64), None),
        ("bool_key_padding_with_holes_and_empty_batch", holes, None, None),
        ("bool_key_padding_with_holes_and_lengths", holes, lengths.astype(np.int32), None),
        ("bool_general_b1sk_and_lengths", general, lengths.astype(np.int32), None),
        ("additive_f16_1hsk", additive.astype(np.float16), None, None),
    ]


@pytest.mark.parametrize("form", range(5))
@pytest.mark.parametrize("alignment", ["top_left", "bottom_right"])
@pytest.mark.parametrize("sq,skv,head_dim", [(70, 300, 64), (300, 70, 128), (200, 1100, 128), (130, 257, 64)])
@pytest.mark.parametrize("kernel", KERNELS)
def test_causal_with_masks(cuda_api, device_arch, rng, kernel, sq, skv, head_dim, alignment, form):
    """Causal masking of either alignment with Sq != Skv on top of every mask family (bottom_right aligns on
    L_b = key_lengths[b], not on a key-padding mask's end), over several KV pipeline stages (Skv = 1100)."""
    _need_path(kernel, device_arch)
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=sq, kv_len=skv, head_dim=head_dim)
    _, attn_mask, lengths, mask_dtype = causal_mask_forms(rng, sq, skv)[form]
    out, _ = compare(cuda_api, kernel, q, k, v, "bfloat16", attn_mask, lengths, mask_dtype, is_causal=1,
                     causal_alignment=alignment)
    if lengths is not None:
        np.testing.assert_array_equal(out[1], 0.0)  # key_lengths[1] = 0: no key at all
    if attn_mask is not None and attn_mask.ndim == 2 and lengths is None:
        np.testing.assert_array_equal(out[2], 0.0)  # batch 2 of the holes mask has no valid key


@pytest.mark.parametrize("form", [3, 4, 9])
@pytest.mark.parametrize("causal", [0, 1])
def test_sm90_many_tiles_per_cta(cuda_api, device_arch, rng, monkeypatch, causal, form):
    """The Hopper kernel with two CTAs walking every tile (SAGE_SM90_GRID_LIMIT): per-batch key ranges give tiles
    of different stage counts in one CTA."""
    _need_path("sm90", device_arch)
    monkeypatch.setenv("SAGE_SM90_GRID_LIMIT", "2")
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=390, kv_len=700, head_dim=128)
    _, attn_mask, lengths, mask_dtype = mask_forms(rng, 390, 700)[form]
    compare(cuda_api, "sm90", q, k, v, "float16", attn_mask, lengths, mask_dtype, is_causal=causal,
            causal_alignment="bottom_right")


@pytest.mark.parametrize("alignment", ["top_left", "bottom_right"])
@pytest.mark.parametrize("sq,skv", [(200, 200), (1, 300), (70, 300), (300, 70), (130, 1000)])
@pytest.mark.parametrize("kernel", KERNELS)
def test_causal_alignment(cuda_api, device_arch, rng, kernel, alignment, sq, skv):
    _need_path(kernel, device_arch)
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=sq, kv_len=skv, head_dim=D)
    dtype = "float32" if sq == skv else "float16"  # float32: V converted, not read in place
    out, _ = compare(cuda_api, kernel, q, k, v, dtype, is_causal=1, causal_alignment=alignment)
    if alignment == "bottom_right" and sq > skv:
        np.testing.assert_array_equal(out[:, :, : sq - skv], 0.0)  # rows before the diagonal see no key


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_kv_cache_bottom_right_with_key_lengths(cuda_api, device_arch, rng, kernel, dtype):
    """Decode / chunked prefill against a padded KV cache: bottom_right aligns the diagonal on each batch's L_b."""
    _need_path(kernel, device_arch)
    for sq, lengths in ((16, [256, 100, 17]), (1, [1000, 513, 64]), (64, [300, 64, 0])):
        skv = max(lengths)
        q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=sq, kv_len=skv, head_dim=D)
        lengths = np.array(lengths, dtype=np.int64)
        out, _ = compare(cuda_api, kernel, q, k, v, dtype, key_lengths=lengths, is_causal=1,
                         causal_alignment="bottom_right")
        for b, n in enumerate(lengths):
            if n < sq:  # rows i < Sq - L_b see no key
                np.testing.assert_array_equal(out[b, :, : sq - n], 0.0)


@pytest.mark.parametrize("kernel", KERNELS)
def test_fully_masked_rows_give_zero(cuda_api, device_arch, rng, kernel):
    _need_path(kernel, device_arch)
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=40, kv_len=80, head_dim=D)
    mask = rng.random((B, HQ, 40, 80)) > 0.5
    mask[:, :, 5] = False
    out, _ = run_gpu(cuda_api, q, k, v, attn_mask=mask, kernel=kernel)
    np.testing.assert_array_equal(out[:, :, 5], 0.0)
    assert not np.isnan(out).any()
    additive = np.where(mask, 0.0, -np.inf).astype(np.float32)
    out, _ = run_gpu(cuda_api, q, k, v, attn_mask=additive, kernel=kernel)
    np.testing.assert_array_equal(out[:, :, 5], 0.0)
    assert not np.isnan(out).any()
    lengths = np.array([80, 0, 3], dtype=np.int32)
    out, _ = run_gpu(cuda_api, q, k, v, key_lengths=lengths, kernel=kernel)
    np.testing.assert_array_equal(out[1], 0.0)
    assert np.abs(out[2]).sum() > 0 and not np.isnan(out).any()
    pad = np.ones((B, 80), dtype=bool)
    pad[2] = False
    out, _ = run_gpu(cuda_api, q, k, v, attn_mask=pad, kernel=kernel)
    np.testing.assert_array_equal(out[2], 0.0)
    assert not np.isnan(out).any()
    lengths = np.array([-5, 10**6, 40], dtype=np.int64)  # clamped to [0, Skv] on the device
    out, _ = run_gpu(cuda_api, q, k, v, key_lengths=lengths, kernel=kernel)
    np.testing.assert_array_equal(out[0], 0.0)
    full, _ = run_gpu(cuda_api, q, k, v, kernel=kernel)
    np.testing.assert_array_equal(out[1], full[1])


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("pv_dtype", ["fp16", "fp8_e4m3"])
def test_padding_values_do_not_matter(cuda_api, device_arch, rng, kernel, pv_dtype):
    """Keys beyond key_lengths (and their V) may hold anything, huge numbers or NaN: the output is unchanged, and
    it equals the op run on the valid keys alone."""
    _need_path(kernel, device_arch)
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=64, kv_len=300, head_dim=D, outliers=True)
    lengths = np.array([300, 130, 9], dtype=np.int64)
    pad = np.arange(300)[None, :] < lengths[:, None]
    holes = pad & (rng.random((B, 300)) > 0.3)
    if kernel == "sm90" and pv_dtype == "fp16":
        _skip("the sm90 path runs fp8_e4m3 P~.V only (fp16 P~.V is refused)")
    attrs = {"kernel": kernel, "pv_dtype": pv_dtype, "smooth_q": 0 if kernel == "sm90" else 1}
    for form in ({"key_lengths": lengths}, {"attn_mask": pad}, {"attn_mask": holes}):
        valid = form.get("attn_mask", pad)
        base, _ = run_gpu(cuda_api, q, k, v, **form, **attrs)
        for fill_k, fill_v in ((1e4, -3e4), (np.nan, np.inf)):
            k2, v2 = k.copy(), v.copy()
            for b in range(B):
                k2[b][:, ~valid[b]] = fill_k
                v2[b][:, ~valid[b]] = fill_v
            out, _ = run_gpu(cuda_api, q, k2, v2, **form, **attrs)
            np.testing.assert_array_equal(out, base, err_msg=f"{list(form)} padding {fill_k}/{fill_v}")
    # key_lengths == the unmasked op on the valid keys only (the same kernel computes the same numbers).
    masked, _ = run_gpu(cuda_api, q, k, v, key_lengths=lengths, **attrs)
    for b, n in enumerate(lengths):
        alone, _ = run_gpu(cuda_api, q[b:b + 1], k[b:b + 1, :, :n], v[b:b + 1, :, :n], **attrs)
        fid = fidelity(masked[b:b + 1], alone)
        exact = np.array_equal(masked[b:b + 1], alone)
        print(f"{kernel} {pv_dtype} batch {b} L={n}: key_lengths vs truncated inputs {fid} bit-exact={exact}")
        assert fid.cos >= 0.99999, fid
    # A prefix bool mask (mask kernel, key bits) against key_lengths (plain kernel): the same numbers.
    bits, _ = run_gpu(cuda_api, q, k, v, attn_mask=pad, **attrs)
    fid = fidelity(bits, masked)
    print(f"{kernel} {pv_dtype}: key-padding mask vs key_lengths {fid} bit-exact={np.array_equal(bits, masked)}")
    assert fid.cos >= 0.99999, fid


@pytest.mark.parametrize("kernel", KERNELS)
def test_odd_lengths_and_broadcast_views(cuda_api, device_arch, rng, kernel):
    """Odd Skv (unpaired mask loads), a ragged query tile, and a mask broadcast by a stride-0 view."""
    _need_path(kernel, device_arch)
    sq, skv = 77, 151
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=sq, kv_len=skv, head_dim=80)
    additive = np.where(rng.random((B, 1, sq, skv)) > 0.3, rng.standard_normal((B, 1, sq, skv)), -np.inf)
    compare(cuda_api, kernel, q, k, v, "float16", additive.astype(np.float32))
    general = rng.random((B, 1, 1, skv)).astype(np.float32)  # additive (B, 1, 1, Skv): a general mask
    compare(cuda_api, kernel, q, k, v, "float16", general, is_causal=1, causal_alignment="bottom_right")
    # (B, 1, Sq, Skv) expanded to (B, Hq, Sq, Skv) without a copy: same result as the broadcast mask itself.
    boolean = rng.random((B, 1, sq, skv)) > 0.4
    direct, _ = run_gpu(cuda_api, q, k, v, attn_mask=boolean, kernel=kernel)
    (qt, _), (kt, _), (vt, _) = (_device(x, "float16") for x in (q, k, v))
    view = torch.from_numpy(boolean).cuda().expand(B, HQ, sq, skv)
    out = torch.full_like(qt, float("nan"))
    import sage_export.cuda_api as api

    api.sageattn_cuda(qt, kt, vt, out=out, attn_mask=view, kernel=kernel)
    torch.cuda.synchronize()
    np.testing.assert_array_equal(out.float().cpu().numpy(), direct)


@pytest.mark.parametrize("kernel", ["auto", "sm90"])
def test_key_lengths_stay_on_the_device(cuda_api, device_arch, rng, kernel):
    """A captured CUDA graph replays with new key_lengths written into the same device tensor: the runner never
    reads them on the host."""
    if kernel != "auto":
        _need_path(kernel, device_arch)
    q, k, v = make_qkv(rng, batch=B, q_heads=HQ, kv_heads=HKV, q_len=100, kv_len=300, head_dim=128)
    (qt, qf), (kt, kf), (vt, vf) = (_device(x, "float16") for x in (q, k, v))
    lengths = torch.tensor([300, 200, 100], dtype=torch.int32, device="cuda")
    call = cuda_api.CudaAttentionCall(qt, kt, vt, key_lengths=lengths, is_causal=1, causal_alignment="bottom_right",
                                      kernel=kernel)
    assert "key_lengths" in call.describe()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        call.run()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        call.run()
    for new in ([17, 300, 0], [64, 65, 299]):
        lengths.copy_(torch.tensor(new, dtype=torch.int32))
        call.out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        ref = sage_attention_reference(qf, kf, vf, key_lengths=np.array(new, dtype=np.int32), is_causal=1,
                                       causal_alignment="bottom_right",
                                       **_reference_attrs({}, kernel, device_arch))
        fid = fidelity(call.out.float().cpu().numpy(), round_to_dtype(ref, "float16"))
        assert fid.cos >= COS_VS_REFERENCE, f"lengths {new}: {fid}"


def test_describe_and_errors(cuda_api):
    q = torch.zeros(2, 2, 8, 64, device="cuda", dtype=torch.float16)
    pad = torch.ones(2, 8, dtype=torch.bool, device="cuda")
    assert "key-padding mask" in cuda_api.CudaAttentionCall(q, q, q, attn_mask=pad).describe()
    general = torch.zeros(2, 1, 8, 8, device="cuda", dtype=torch.float16)
    assert "general attn_mask" in cuda_api.CudaAttentionCall(q, q, q, attn_mask=general).describe()
    with pytest.raises((RuntimeError, ValueError), match="attn_mask"):
        cuda_api.sageattn_cuda(q, q, q, attn_mask=torch.ones(2, 3, 8, 8, dtype=torch.bool, device="cuda"))
    with pytest.raises((RuntimeError, ValueError), match="attn_mask"):
        cuda_api.sageattn_cuda(q, q, q, attn_mask=torch.ones(2, 7, dtype=torch.bool, device="cuda"))
    with pytest.raises(ValueError, match="key_lengths"):
        cuda_api.sageattn_cuda(q, q, q, key_lengths=torch.ones(2, dtype=torch.float32, device="cuda"))
