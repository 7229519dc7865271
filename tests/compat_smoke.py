"""Loads the op library into whatever onnxruntime is importable and checks fp32/fp16/bf16 runs.

Run as a subprocess by test_ort_compat.py with another onnxruntime version first on sys.path.
Prints one line 'ok <version>' on success; exits non-zero with the error otherwise.
"""
from __future__ import annotations

import sys

import numpy as np
import onnxruntime as ort

from op_runner import rounded_inputs, run_sage
from sage_export.metrics import fidelity
from sage_export.numerics import round_to_dtype
from sage_export.reference import sage_attention_reference


def main() -> int:
    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal((1, 4, 96, 64)).astype(np.float32) for _ in range(3))
    for dtype in ("float32", "float16", "bfloat16"):
        qq, kk, vv = rounded_inputs((q, k, v), dtype)
        out = run_sage(qq, kk, vv, dtype=dtype, is_causal=1)
        fid = fidelity(out, round_to_dtype(sage_attention_reference(qq, kk, vv, is_causal=1), dtype))
        if fid.rel_l1 > 1e-3:
            print(f"onnxruntime {ort.__version__} {dtype}: mismatch {fid}")
            return 1
    print(f"ok {ort.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
