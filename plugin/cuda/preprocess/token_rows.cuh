// Shared by the preprocessing kernels (all bandwidth-bound): threads read token rows of one (batch, head)
// slice as 16-byte chunks of 8 channels. With kDp channels (64 or 128) a row is kDp/8 chunks, so a warp reads
// 512 contiguous bytes of fp16 rows per load instruction.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "../common/convert.cuh"
#include "preprocess.h"

namespace sage::cuda {

template <typename T>
__device__ __forceinline__ const T* slice_base(const TokenView& v, int64_t bh) {
  const int64_t b = bh / v.heads, h = bh % v.heads;
  return static_cast<const T*>(v.data) + b * v.batch_stride + h * v.head_stride;
}

// Channels c..c+7 of a row as floats, zero at channels >= n_valid. `vec` says that rows are 8-element aligned
// (16 bytes for 2-byte types, two 16-byte halves for fp32).
template <typename T>
__device__ __forceinline__ void load8_as_float(const T* row, int c, int n_valid, bool vec, float (&x)[8]) {
  if (vec && c + 8 <= n_valid) {
    if constexpr (sizeof(T) == 4) {
      const float4 lo = *reinterpret_cast<const float4*>(row + c);
      const float4 hi = *reinterpret_cast<const float4*>(row + c + 4);
      x[0] = lo.x, x[1] = lo.y, x[2] = lo.z, x[3] = lo.w, x[4] = hi.x, x[5] = hi.y, x[6] = hi.z, x[7] = hi.w;
    } else {
      const uint4 v = *reinterpret_cast<const uint4*>(row + c);
      const T* e = reinterpret_cast<const T*>(&v);
#pragma unroll
      for (int i = 0; i < 8; ++i) x[i] = load_as_float<T>(e + i);
    }
    return;
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) x[i] = (c + i < n_valid) ? load_as_float<T>(row + c + i) : 0.f;
}

template <typename T>
__device__ __forceinline__ void load_chunk(const TokenView& v, const T* base, int tok, int c, float (&x)[8]) {
  load8_as_float<T>(base + tok * v.token_stride, c, v.head_dim, v.vec8, x);
}

// One 8-channel chunk as loaded: a uint4 of 16-bit values, or two float4 for fp32.
template <typename T>
struct RawChunk {
  using type = uint4;
};
template <>
struct RawChunk<float> {
  struct type {
    float4 lo, hi;
  };
};

// Chunk c..c+7 of token `tok` (zeros when !valid and at channels >= head_dim), unconverted.
template <typename T>
__device__ __forceinline__ typename RawChunk<T>::type load_raw_chunk(const TokenView& v, const T* base, int tok, int c,
                                                                     bool valid) {
  typename RawChunk<T>::type raw;
  if (valid && v.vec8 && c + 8 <= v.head_dim) {
    raw = *reinterpret_cast<const typename RawChunk<T>::type*>(base + tok * v.token_stride + c);
    return raw;
  }
  T e[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) e[i] = valid && c + i < v.head_dim ? base[tok * v.token_stride + c + i] : float_to<T>(0.f);
  static_assert(sizeof(e) == sizeof(raw), "chunk size");
  memcpy(&raw, e, sizeof(raw));
  return raw;
}

template <typename T>
__device__ __forceinline__ void raw_to_float(const typename RawChunk<T>::type& raw, float (&x)[8]) {
  const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < 8; ++i) x[i] = load_as_float<T>(e + i);
}

// Calls launch.template run<T, kDp>() for the CUDA type of `dtype` and the padded head dim.
template <class Launch>
cudaError_t with_type_and_dim(DType dtype, int head_dim_pad, const Launch& launch) {
  auto by_type = [&](auto dim_tag) -> cudaError_t {
    constexpr int kDp = decltype(dim_tag)::value;
    switch (dtype) {
      case DType::kFloat32: return launch.template run<float, kDp>();
      case DType::kFloat16: return launch.template run<__half, kDp>();
      case DType::kBFloat16: return launch.template run<__nv_bfloat16, kDp>();
    }
    return cudaErrorInvalidValue;
  };
  if (head_dim_pad == 64) return by_type(std::integral_constant<int, 64>{});
  if (head_dim_pad == 128) return by_type(std::integral_constant<int, 128>{});
  return cudaErrorInvalidValue;
}

}  // namespace sage::cuda
