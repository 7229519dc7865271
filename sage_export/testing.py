"""Synthetic Q, K, V for tests and fidelity tools.

``make_qkv`` draws standard Gaussian Q, K, V in BNSH order and converts them to the requested
layout, so the same generator state gives the same numbers whatever the layout:

* ``"BNSH"``: ``(B, H, S, D)``; ``"BSNH"``: ``(B, S, H, D)``; ``"BSH"``: 3-D ``(B, S, H*D)`` (heads
  outer, channels inner; pass ``q_num_heads``/``kv_num_heads`` to the op).

``outliers=True`` adds the structure SageAttention's smoothing is designed for:

* K: a per-channel bias ``4 * N(0, 1)`` for every (batch, kv head, channel), constant over tokens
  (``smooth_k`` removes it exactly; it is invisible to exact softmax).
* Q: ``Q_OUTLIER_CHANNELS`` channels per (batch, head) get a constant offset of magnitude
  ``Q_OUTLIER_MAGNITUDE`` (random sign), i.e. large-magnitude channels that dominate the Q amax and
  that ``smooth_q`` removes before quantization.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Final

import numpy as np

LAYOUTS: Final = ("BNSH", "BSNH", "BSH")
K_BIAS_STD: Final = 4.0
Q_OUTLIER_CHANNELS: Final = 4
Q_OUTLIER_MAGNITUDE: Final = 10.0


def from_bnsh(x: np.ndarray, layout: str) -> np.ndarray:
    """A BNSH array in ``layout`` ("BNSH", "BSNH" or 3-D "BSH")."""
    if layout == "BNSH":
        return np.ascontiguousarray(x)
    t = np.ascontiguousarray(x.transpose(0, 2, 1, 3))
    if layout == "BSNH":
        return t
    if layout == "BSH":
        return t.reshape(t.shape[0], t.shape[1], t.shape[2] * t.shape[3])
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def make_qkv(
    rng: np.random.Generator,
    *,
    batch: int,
    q_heads: int,
    kv_heads: int,
    q_len: int,
    kv_len: int,
    head_dim: int,
    layout: str = "BNSH",
    outliers: bool = False,
    dtype: type = np.float32,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian ``(q, k, v)`` of ``dtype`` in ``layout`` (see the module docstring)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if q_heads < 1 or kv_heads < 1 or q_heads % kv_heads != 0:
        raise ValueError(f"q_heads ({q_heads}) must be a positive multiple of kv_heads ({kv_heads})")
    q = rng.standard_normal((batch, q_heads, q_len, head_dim))
    k = rng.standard_normal((batch, kv_heads, kv_len, head_dim))
    v = rng.standard_normal((batch, kv_heads, kv_len, head_dim))
    if outliers:
        k += K_BIAS_STD * rng.standard_normal((batch, kv_heads, 1, head_dim))
        n_out = min(Q_OUTLIER_CHANNELS, head_dim)
        for b in range(batch):
            for h in range(q_heads):
                channels = rng.choice(head_dim, size=n_out, replace=False)
                signs = rng.choice(np.array([-1.0, 1.0]), size=n_out)
                q[b, h, :, channels] += (Q_OUTLIER_MAGNITUDE * signs)[:, None]
    return tuple(from_bnsh(x.astype(dtype), layout) for x in (q, k, v))  # type: ignore[return-value]


def gpu_effective_attrs(attrs: dict, arch: int) -> dict:
    """The attributes a CUDA call with `attrs` really computes on a device of compute capability `arch`
    (e.g. 90), following the contract's GPU rules (docs/OP_CONTRACT.md, "The GPU"): `auto` takes the Hopper
    path on sm_90 when it can (FP8 P~.V, no smooth_q; masks included), which runs int4 as int8; the sm80 path
    (and `auto` below sm_89 or on Hopper when the Hopper path refuses) runs FP8 P~.V as FP16.
    The `kernel` attribute is kept; tests compare the GPU against the CPU op or reference with these."""
    eff = dict(attrs)
    kernel = eff.get("kernel", "auto")
    fp8 = eff.get("pv_dtype", "fp8_e4m3") == "fp8_e4m3"
    hopper = kernel == "sm90" or (kernel == "auto" and arch == 90 and fp8 and not eff.get("smooth_q", 0))
    if hopper:
        if eff.get("qk_quant") == "int4":
            eff["qk_quant"] = "int8"
    elif kernel == "sm80" or (kernel == "auto" and not 89 <= arch < 90):
        eff["pv_dtype"] = "fp16"
    return eff


def run_under_sanitizer(sanitizer: str, tool: str, script: Path, env: dict[str, str]) -> tuple[int, str]:
    """Runs `python script` under `compute-sanitizer --tool <tool> --error-exitcode 1`; returns the exit code and
    the last 4000 characters of its output (for the test's assertion message)."""
    proc = subprocess.run([sanitizer, "--tool", tool, "--error-exitcode", "1", sys.executable, str(script)],
                          capture_output=True, text=True, env=env, timeout=600)
    return proc.returncode, (proc.stdout + proc.stderr)[-4000:]
