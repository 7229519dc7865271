"""One line per kernel family: cos / rel-L1 of the GPU against the NumPy reference, and the plan it ran.
A quick first look on a new machine before the full pytest run (python3 tests/gpu/smoke.py)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sage_export import cuda_api  # noqa: E402
from sage_export.metrics import fidelity  # noqa: E402
from sage_export.numerics import round_to_dtype  # noqa: E402
from sage_export.reference import float_attention, sage_attention_reference  # noqa: E402
from sage_export.testing import make_qkv  # noqa: E402


def main() -> int:
    ok, reason = cuda_api.cuda_available()
    if not ok:
        print(f"skip: {reason}")
        return 0
    print(torch.cuda.get_device_name(), torch.cuda.get_device_capability())
    rng = np.random.default_rng(1)
    failures = 0
    cases = [
        dict(kernel="sm80", pv_dtype="fp16"),
        dict(kernel="sm80", pv_dtype="fp16", pv_accum="fp16"),
        dict(kernel="sm80", pv_dtype="fp16", qk_quant="int4"),
        dict(kernel="sm80", pv_dtype="fp16", smooth_q=1),
        dict(kernel="sm80", pv_dtype="fp16", is_causal=1),
        dict(kernel="sm89"),
        dict(kernel="sm89", pv_accum="fp16"),
        dict(kernel="sm89", qk_quant="int4", smooth_q=1, is_causal=1),
        dict(kernel="sm89", qk_granularity="per_warp"),
        dict(kernel="sm80", qk_granularity="per_block", pv_dtype="fp16"),
    ]
    for head_dim in (64, 128):
        q, k, v = make_qkv(rng, batch=1, q_heads=4, kv_heads=2, q_len=200, kv_len=200, head_dim=head_dim)
        qt, kt, vt = (torch.from_numpy(x).cuda().half() for x in (q, k, v))
        qf, kf, vf = (t.float().cpu().numpy() for t in (qt, kt, vt))
        exact = float_attention(qf, kf, vf)
        for attrs in cases:
            out = torch.full_like(qt, float("nan"))
            try:
                call = cuda_api.CudaAttentionCall(qt, kt, vt, out=out, **attrs)
                t0 = time.time()
                call.run()
                torch.cuda.synchronize()
                dt = time.time() - t0
            except RuntimeError as exc:
                print(f"D={head_dim} {attrs}: ERROR {exc}")
                failures += 1
                continue
            ref_attrs = dict(attrs)
            if attrs.get("kernel") == "sm80" and ref_attrs.get("pv_dtype", "fp8_e4m3") == "fp8_e4m3":
                ref_attrs["pv_dtype"] = "fp16"
            ref = round_to_dtype(sage_attention_reference(qf, kf, vf, **ref_attrs), "float16")
            o = out.float().cpu().numpy()
            nan = int(np.isnan(o).sum())
            fr, fe = fidelity(np.nan_to_num(o), ref), fidelity(np.nan_to_num(o), exact)
            bad = nan > 0 or fr.cos < 0.9999
            failures += bad
            print(f"{'FAIL' if bad else 'ok  '} D={head_dim} {attrs}: vs ref {fr} | vs float cos={fe.cos:.6f} "
                  f"| nan={nan} | {dt*1e3:.1f} ms | {call.describe()}")
    print(f"smoke: {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
