"""Localises a wrong sm90 result: checks each workspace array of the quantization passes against NumPy and
prints where in the output (row blocks, column chunks) the error sits. Not a test; run on the GPU machine:

    python3 tests/gpu_sm90/diagnose_sm90.py [--n 300] [--d 128] [--causal 1] [--gran per_thread]
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from sage_export._ref_pv import PvFormat, prepare_v  # noqa: E402
from sage_export.metrics import fidelity  # noqa: E402
from sage_export.numerics import e4m3_decode  # noqa: E402
from sage_export.quant import k_group_index, q_group_index, quantize_symmetric  # noqa: E402
from sage_export.reference import sage_attention_reference  # noqa: E402
from sage_export.testing import make_qkv  # noqa: E402

from sm90_binding import Sm90Library  # noqa: E402


def v_key_of_position(p: np.ndarray) -> np.ndarray:
    """Key (within its 16-group) stored at V^T position p (inverse of prepass.cuh's v_position_in_group)."""
    t, u = (p % 16) // 4, p % 4
    return (p // 16) * 16 + 2 * t + (u & 1) + 8 * (u >> 1)


def report(name: str, got: np.ndarray, want: np.ndarray, tol: float = 0.0) -> None:
    bad = np.abs(got.astype(np.float64) - want.astype(np.float64)) > tol
    frac = bad.mean() if bad.size else 0.0
    where = np.argwhere(bad)[:5].tolist()
    print(f"  {name:<10} mismatches {bad.sum():8d} / {bad.size:8d} ({frac:.2%}) first at {where}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--nk", type=int, default=0)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--causal", type=int, default=0)
    ap.add_argument("--gran", default="per_thread")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    import torch

    lib = Sm90Library()
    rng = np.random.default_rng(args.seed)
    n, nk, d, h = args.n, args.nk or args.n, args.d, args.heads
    q, k, v = (x.astype(np.float16) for x in make_qkv(rng, batch=1, q_heads=h, kv_heads=h, q_len=n, kv_len=nk, head_dim=d))
    tq, tk, tv = (torch.from_numpy(x).cuda() for x in (q, k, v))
    out = torch.full_like(tq, float("nan"))
    attrs = dict(is_causal=args.causal, qk_granularity=args.gran)
    call = lib.make_call(tq, tk, tv, out, **attrs)
    print("can_implement:", repr(lib.can_implement(call)))
    plan = lib.plan(call)
    print("plan:", plan)
    ws = torch.zeros(plan.total, dtype=torch.uint8, device="cuda")
    lib.run(call, ws)
    torch.cuda.synchronize()
    w = ws.cpu().numpy()
    dp = plan.head_dim_padded
    g = args.gran

    print("quantization passes:")
    qf, kf, vf = (x.astype(np.float32) for x in (q, k, v))
    codes, delta = quantize_symmetric(qf, q_group_index(np.arange(n), g), 127)
    q8 = w[plan.q8 : plan.q8 + h * n * dp].view(np.int8).reshape(1, h, n, dp)
    report("q codes", q8[..., :d], codes)
    report("q pad", q8[..., d:], np.zeros_like(q8[..., d:]))
    sigma = np.float32(1.0 / math.sqrt(d))
    fold = np.float32(sigma * np.float32(math.log2(math.e)))
    qgroups = {"per_thread": -(-n // 32) * 8, "per_warp": -(-n // 32), "per_block": -(-n // 128)}[g]
    qs = w[plan.q_scale : plan.q_scale + 4 * h * qgroups].view(np.float32).reshape(1, h, qgroups)
    got_qs = qs[..., q_group_index(np.arange(n), g)]
    report("q scales", got_qs, delta * fold, tol=1e-6 * float(np.max(delta * fold)))

    kbar = (np.sum(kf.astype(np.float64), axis=-2) / nk).astype(np.float32)
    ksm = (kf - kbar[..., None, :]).astype(np.float32)
    kcodes, kdelta = quantize_symmetric(ksm, k_group_index(np.arange(nk), g), 127)
    k8 = w[plan.k8 : plan.k8 + h * nk * dp].view(np.int8).reshape(1, h, nk, dp)
    report("k codes", k8[..., :d], kcodes, tol=1.0)  # the mean's summation order may move a code by 1
    report("k codes!", k8[..., :d], kcodes)
    kgroups = {"per_thread": -(-nk // 64) * 4, "per_warp": -(-nk // 64), "per_block": -(-nk // 64)}[g]
    ks = w[plan.k_scale : plan.k_scale + 4 * h * kgroups].view(np.float32).reshape(1, h, kgroups)
    report("k scales", ks[..., k_group_index(np.arange(nk), g)], kdelta, tol=1e-5 * float(np.max(kdelta)))

    v8, vdelta = prepare_v(vf, PvFormat("fp8_e4m3", "fp32"))
    vt = w[plan.v8t : plan.v8t + h * dp * plan.kv_len16].reshape(1, h, dp, plan.kv_len16)
    pos = np.arange(plan.kv_len16)
    keys = v_key_of_position(pos)
    vt_dec = e4m3_decode(vt)  # (1, h, dp, kv16) values at storage positions
    want = np.zeros((1, h, dp, plan.kv_len16), dtype=np.float32)
    valid = keys < nk
    want[:, :, :d, valid] = np.swapaxes(v8, -1, -2)[..., keys[valid]]
    report("v^T codes", vt_dec, want)
    vs = w[plan.v_scale : plan.v_scale + 4 * h * dp].view(np.float32).reshape(1, h, dp)
    report("v scales", vs[..., :d], vdelta, tol=1e-7 * float(np.max(vdelta)))

    print("output:")
    got = out.float().cpu().numpy()
    print(f"  non-finite outputs: {np.count_nonzero(~np.isfinite(got))}")
    ref = sage_attention_reference(q, k, v, **attrs)
    print(f"  overall: {fidelity(np.nan_to_num(got), ref)}")
    for name, axis_len, sl in (("rows/16", n, lambda i: (slice(None), slice(None), slice(16 * i, 16 * i + 16))),
                               ("cols/8", d, lambda i: (Ellipsis, slice(8 * i, 8 * i + 8)))):
        chunks = -(-axis_len // (16 if name == "rows/16" else 8))
        coss = [fidelity(np.nan_to_num(got[sl(i)]), ref[sl(i)]).cos for i in range(chunks)]
        worst = np.argsort(coss)[:6]
        print(f"  {name}: worst cos {[(int(i), round(coss[i], 5)) for i in worst]}")
    row_err = np.abs(np.nan_to_num(got) - ref).mean(axis=(0, 1, 3))
    print(f"  mean |err| by row (first 40): {np.round(row_err[:40], 4).tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
