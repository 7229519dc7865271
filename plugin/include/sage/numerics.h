// Host-side bit-exact number formats: IEEE fp16 and bf16 (round to nearest even), FP8 E4M3 with CUDA's
// saturating round-to-nearest-even conversion, and the integer rounding of docs/OP_CONTRACT.md §3.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace sage::num {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Rounds to the nearest integer with ties to even; independent of the FP environment's rounding mode.
inline float round_even(float x) { return x - std::remainder(x, 1.0f); }

inline float round_half_away(float x) { return std::round(x); }

inline uint16_t float_to_half(float f) {
  const uint32_t x = float_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u) return sign | (ax > 0x7F800000u ? 0x7E00u : 0x7C00u);
  if (ax >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 rounds to infinity
  if (ax < 0x38800000u) {                          // below 2^-14: subnormal half, step 2^-24
    return sign | static_cast<uint16_t>(round_even(bits_float(ax) * 16777216.0f));
  }
  const uint32_t rounded = ax + 0xFFFu + ((ax >> 13) & 1u);
  return sign | static_cast<uint16_t>((rounded - 0x38000000u) >> 13);
}

inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1Fu;
  const uint32_t m = h & 0x3FFu;
  if (e == 0) {
    const float v = static_cast<float>(m) * 5.9604644775390625e-8f;  // 2^-24
    return sign ? -v : v;
  }
  if (e == 31) return bits_float(sign | 0x7F800000u | (m << 13));
  return bits_float(sign | ((e + 112u) << 23) | (m << 13));
}

inline float round_to_half(float f) { return half_to_float(float_to_half(f)); }

inline uint16_t float_to_bf16(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

inline float bf16_to_float(uint16_t b) { return bits_float(static_cast<uint32_t>(b) << 16); }

// CUDA's __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3): nearest even, |x| > 448 -> 448, NaN -> NaN.
inline uint8_t float_to_e4m3(float x) {
  const uint8_t sign = static_cast<uint8_t>((float_bits(x) >> 24) & 0x80u);
  if (std::isnan(x)) return 0x7F;
  const float a = std::fabs(x);
  if (a >= 448.f) return sign | 0x7E;
  if (a < 0.015625f) {  // below 2^-6: subnormal, step 2^-9; code 8 is exactly the smallest normal
    return sign | static_cast<uint8_t>(round_even(a * 512.f));
  }
  int e2 = 0;
  std::frexp(a, &e2);  // a = f * 2^e2, f in [0.5, 1)
  int e = e2 - 1;      // a in [2^e, 2^(e+1))
  int mant = static_cast<int>(round_even(std::ldexp(a, 3 - e))) - 8;
  if (mant == 8) {
    mant = 0;
    ++e;
  }
  return sign | static_cast<uint8_t>(((e + 7) << 3) | mant);
}

inline float e4m3_to_float(uint8_t c) {
  const int e = (c >> 3) & 0xF;
  const int m = c & 7;
  float v;
  if (e == 15 && m == 7) return NAN;
  if (e == 0) {
    v = std::ldexp(static_cast<float>(m), -9);
  } else {
    v = std::ldexp(1.f + static_cast<float>(m) / 8.f, e - 7);
  }
  return (c & 0x80) ? -v : v;
}

inline float round_to_e4m3(float x) { return e4m3_to_float(float_to_e4m3(x)); }

}  // namespace sage::num
