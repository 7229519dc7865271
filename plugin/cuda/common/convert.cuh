// Number conversions used inside the kernels: exact int32 -> float, fp16/E4M3 packing of P~ into MMA
// operands, and element conversions of the three I/O types.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace sage::cuda {

// Exact float of an int32 with |x| < 2^22 via the 1.5*2^23 bias: one integer and one float add instead of the
// slower I2F. The largest Q.K^T dot product, 128 * 127 * 127 = 2,064,512, is below 2^22.
__device__ __forceinline__ float small_int_to_float(int x) {
  return __int_as_float(x + 0x4B400000) - 12582912.0f;
}

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Two floats -> half2 (round to nearest even), `lo` in the low 16 bits (the lower k index of an MMA operand).
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

__device__ __forceinline__ float2 unpack_half2(uint32_t v) {
  return __half22float2(*reinterpret_cast<const __half2*>(&v));
}

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 890)
// Four floats -> four E4M3 bytes, x0 in the lowest byte. cvt.rn.satfinite.e4m3x2.f32 d, a, b puts a in the
// high byte, hence the swapped operands. Nearest even, saturating to +-448: the contract's e4m3().
__device__ __forceinline__ uint32_t pack_e4m3x4(float x0, float x1, float x2, float x3) {
  uint16_t lo, hi;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(lo) : "f"(x1), "f"(x0));
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(hi) : "f"(x3), "f"(x2));
  return static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
}
#endif

// Portable single conversion (hardware on sm_89+, emulated by cuda_fp8.h before): used by the preprocessing
// kernels, which are compiled for every target.
__device__ __forceinline__ uint8_t float_to_e4m3(float x) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3));
}

template <typename T>
__device__ __forceinline__ float load_as_float(const T* p);
template <>
__device__ __forceinline__ float load_as_float<float>(const float* p) { return *p; }
template <>
__device__ __forceinline__ float load_as_float<__half>(const __half* p) { return __half2float(*p); }
template <>
__device__ __forceinline__ float load_as_float<__nv_bfloat16>(const __nv_bfloat16* p) {
  return __bfloat162float(*p);
}

template <typename T>
__device__ __forceinline__ T float_to(float x);
template <>
__device__ __forceinline__ float float_to<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half float_to<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 float_to<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

}  // namespace sage::cuda
