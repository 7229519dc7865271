// Shared by the preprocessing kernels: a 256-thread CTA reads token rows of a (batch, head) slice, one warp
// per row at a time, lane l holding channels 4l..4l+3 (so head_dim <= 128 is one pass per row).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "../common/convert.cuh"
#include "preprocess.h"

namespace sage::cuda {

inline constexpr int kPrepThreads = 256;
inline constexpr int kPrepWarps = kPrepThreads / 32;

template <typename T>
__device__ __forceinline__ const T* slice_base(const TokenView& v, int64_t bh) {
  const int64_t b = bh / v.heads, h = bh % v.heads;
  return static_cast<const T*>(v.data) + b * v.batch_stride + h * v.head_stride;
}

// Channels 4*lane..4*lane+3 of token `tok` (zeros past head_dim).
template <typename T>
__device__ __forceinline__ void load_row4(const TokenView& v, const T* base, int tok, int lane, float (&x)[4]) {
  load4_as_float<T>(base + tok * v.token_stride, 4 * lane, v.head_dim, v.vec4, x);
}

// Calls launch.template operator()<T>() for the CUDA type of `dtype`.
template <class Launch>
cudaError_t with_cuda_type(DType dtype, const Launch& launch) {
  switch (dtype) {
    case DType::kFloat32: return launch.template run<float>();
    case DType::kFloat16: return launch.template run<__half>();
    case DType::kBFloat16: return launch.template run<__nv_bfloat16>();
  }
  return cudaErrorInvalidValue;
}

}  // namespace sage::cuda
