"""Number formats and rounding used by the SageAttention reference (docs/OP_CONTRACT.md).

Everything here is vectorized NumPy and returns float32 arrays holding the *values* of the narrow
formats (an FP8 or FP16 value is exactly representable in float32), so the callers can keep doing
float32 arithmetic on them. ``e4m3_encode``/``e4m3_decode`` give the 8-bit codes for tests.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

E4M3_MAX: Final = 448.0
"""Largest finite E4M3 value (S.1111.110)."""
E4M3_MIN_NORMAL_EXP: Final = -6
"""Exponent of the smallest normal E4M3 value, 2**-6; subnormals are multiples of 2**-9."""
E4M3_MANTISSA_BITS: Final = 3
E4M3_BIAS: Final = 7

OUTPUT_DTYPES: Final = ("float32", "float16", "bfloat16")


def as_f32(x: npt.ArrayLike) -> F32:
    """``x`` as a float32 array (no copy when it already is one)."""
    return np.asarray(x, dtype=np.float32)


def e4m3_round(x: npt.ArrayLike) -> F32:
    """Round float32 values to E4M3 like CUDA's ``__nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3)``.

    Round to nearest, ties to even; ``|x| >= 448`` (and +-inf) saturate to ``+-448``; NaN stays NaN;
    subnormals are multiples of ``2**-9``; the sign of zero is kept. Returns the E4M3 values in float32.
    """
    xf = as_f32(x)
    a = np.abs(xf)
    with np.errstate(invalid="ignore", over="ignore"):
        _, e = np.frexp(a)  # a = m * 2**e with m in [0.5, 1): floor(log2 a) = e - 1
        quantum_exp = np.maximum(e - 1 - E4M3_MANTISSA_BITS, E4M3_MIN_NORMAL_EXP - E4M3_MANTISSA_BITS)
        # a / 2**q is exact (power-of-two scaling), np.rint rounds half to even.
        rounded = np.ldexp(np.rint(np.ldexp(a, -quantum_exp)), quantum_exp).astype(np.float32)
        rounded = np.minimum(rounded, np.float32(E4M3_MAX))  # NaN propagates through np.minimum
    return np.copysign(rounded, xf).astype(np.float32)


def e4m3_encode(x: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """E4M3 codes of ``e4m3_round(x)``. NaN keeps its sign bit: +NaN -> 0x7F, -NaN -> 0xFF."""
    xf = as_f32(x)
    y = e4m3_round(xf)
    sign = np.signbit(y).astype(np.uint8) << np.uint8(7)
    a = np.abs(y).astype(np.float64)
    nan = np.isnan(a)
    a = np.where(nan, 0.0, a)
    _, e = np.frexp(a)
    exp = e.astype(np.int64) - 1
    normal = a >= 2.0**E4M3_MIN_NORMAL_EXP
    # normal: (1 + M/8) * 2**(E-7); subnormal: M * 2**-9 with E = 0.
    mant_normal = np.rint((np.ldexp(a, -exp) - 1.0) * 8.0)
    mant_sub = np.rint(np.ldexp(a, -(E4M3_MIN_NORMAL_EXP - E4M3_MANTISSA_BITS)))
    exp_field = np.where(normal, exp + E4M3_BIAS, 0)
    mant = np.where(normal, mant_normal, mant_sub).astype(np.int64)
    code = (exp_field << E4M3_MANTISSA_BITS) | mant
    code = np.where(nan, 0x7F, code).astype(np.uint8)
    return code | sign


def e4m3_decode(code: npt.ArrayLike) -> F32:
    """Float32 value of E4M3 codes (uint8). 0x7F and 0xFF are NaN (sign bit kept); there is no infinity."""
    c = np.asarray(code, dtype=np.uint8).astype(np.int64)
    sign = np.where(c & 0x80, -1.0, 1.0)
    exp_field = (c >> E4M3_MANTISSA_BITS) & 0xF
    mant = c & 0x7
    normal = np.ldexp(1.0 + mant / 8.0, exp_field - E4M3_BIAS)
    sub = np.ldexp(mant.astype(np.float64), E4M3_MIN_NORMAL_EXP - E4M3_MANTISSA_BITS)
    value = sign * np.where(exp_field == 0, sub, normal)
    value = np.where((exp_field == 0xF) & (mant == 0x7), np.copysign(np.nan, sign), value)
    return value.astype(np.float32)


def exp2_f32(x: npt.ArrayLike) -> F32:
    """``2**x`` of float32 values, correctly rounded to float32 (evaluated in float64, then rounded).

    NumPy's own float32 ``exp2`` is not correctly rounded and its result depends on the SIMD path the
    CPU takes; the correctly rounded value is unique (and is what e.g. glibc's ``exp2f`` returns).
    """
    with np.errstate(over="ignore"):
        return np.exp2(as_f32(x).astype(np.float64)).astype(np.float32)


def fp16_round(x: npt.ArrayLike) -> F32:
    """Round float32 values to IEEE binary16, nearest even (overflow gives +-inf), back in float32."""
    with np.errstate(over="ignore"):
        return as_f32(x).astype(np.float16).astype(np.float32)


def bf16_round(x: npt.ArrayLike) -> F32:
    """Round float32 values to bfloat16, nearest even on the float32 bits (overflow gives +-inf).

    NaN stays NaN (quieted so that truncating the low mantissa bits cannot turn it into inf).
    """
    xf = np.ascontiguousarray(as_f32(x))
    bits = xf.view(np.uint32).astype(np.uint64)
    lsb = (bits >> np.uint64(16)) & np.uint64(1)
    rounded = ((bits + np.uint64(0x7FFF) + lsb) & np.uint64(0xFFFF0000)).astype(np.uint32)
    quiet_nan = ((bits | np.uint64(0x00400000)) & np.uint64(0xFFFF0000)).astype(np.uint32)
    out_bits = np.where(np.isnan(xf), quiet_nan, rounded)
    return out_bits.view(np.float32).reshape(xf.shape)


def round_to_dtype(x: npt.ArrayLike, dtype: str) -> F32:
    """Round float32 values to the op's output type T ('float32', 'float16' or 'bfloat16'), nearest even."""
    if dtype == "float32":
        return as_f32(x)
    if dtype == "float16":
        return fp16_round(x)
    if dtype == "bfloat16":
        return bf16_round(x)
    raise ValueError(f"dtype must be one of {OUTPUT_DTYPES}, got {dtype!r}")


def round_half_away_from_zero(x: npt.ArrayLike) -> F32:
    """Round float32 values to integers, halves away from zero (exact: no ``floor(x + 0.5)`` rounding trap)."""
    xf = as_f32(x)
    whole = np.trunc(xf)
    frac = xf - whole  # exact for floating-point values
    step = np.where(np.abs(frac) >= np.float32(0.5), np.sign(xf), np.float32(0.0)).astype(np.float32)
    return (whole + step).astype(np.float32)


def sequential_sum(x: F32, axis: int) -> F32:
    """Float32 sum along ``axis`` in ascending index order: ``((x0 + x1) + x2) + ...``.

    The contract does not fix a summation order; this reference uses the plain sequential one
    (NumPy's own reductions may sum pairwise).
    """
    xs = np.moveaxis(as_f32(x), axis, 0)
    acc = np.zeros(xs.shape[1:], dtype=np.float32)
    for row in xs:
        np.add(acc, row, out=acc)
    return acc
