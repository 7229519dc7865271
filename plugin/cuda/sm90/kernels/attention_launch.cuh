// Launch of one attention-kernel instantiation; included by the per-head-dim translation units only.
#pragma once
#include <cuda_runtime_api.h>

#include "../host/dependent_launch.h"
#include "../host/launch.h"
#include "launch_grid.h"
#include "traits.h"
#include "attention_kernel.cuh"

namespace sage::sm90 {

template <int kHeadDim, typename OutT, bool kCausal, bool kStaged>
cudaError_t launch_attention_instance(const AttnTensorMaps& maps, const AttnKernelParams& p, int batch,
                                      cudaStream_t stream) {
  using Tr = AttnTraits<kHeadDim, kStaged>;
  constexpr int kSmem = attn_smem_bytes<Tr>();
  auto* kernel = &sage_sm90_attention_kernel<kHeadDim, OutT, kCausal, kStaged>;
  // Once per instantiation (thread-safe static init); not a stream operation, so capture-safe.
  static const cudaError_t attr = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  if (attr != cudaSuccess) return attr;
  dim3 grid;
  const cudaError_t grid_e = attention_launch_grid<Tr, kCausal>(p, batch, &grid);
  if (grid_e != cudaSuccess) return grid_e;
  return launch_dependent(kernel, grid, dim3(Tr::kThreads), kSmem, stream, maps.q, maps.k, maps.v, p);
}

// D = 64 stages its output only for short key ranges, where the epilogue is a large share of a tile (traits.h).
inline constexpr int kStagedD64MaxKeys = 1024;

template <int kHeadDim, typename OutT, bool kCausal>
cudaError_t launch_attention_staging(const AttnTensorMaps& maps, const AttnKernelParams& p, int batch,
                                     cudaStream_t stream) {
  if constexpr (kHeadDim == 64) {
    if (p.kv_len <= kStagedD64MaxKeys) return launch_attention_instance<64, OutT, kCausal, true>(maps, p, batch, stream);
    return launch_attention_instance<64, OutT, kCausal, false>(maps, p, batch, stream);
  } else {
    return launch_attention_instance<kHeadDim, OutT, kCausal, true>(maps, p, batch, stream);
  }
}

template <int kHeadDim>
cudaError_t launch_attention_for_dtype(const AttnTensorMaps& maps, const AttnKernelParams& p, DType dtype, bool causal,
                                       int batch, cudaStream_t stream) {
  switch (dtype) {
    case DType::kFloat16:
      return causal ? launch_attention_staging<kHeadDim, __half, true>(maps, p, batch, stream)
                    : launch_attention_staging<kHeadDim, __half, false>(maps, p, batch, stream);
    case DType::kBFloat16:
      return causal ? launch_attention_staging<kHeadDim, __nv_bfloat16, true>(maps, p, batch, stream)
                    : launch_attention_staging<kHeadDim, __nv_bfloat16, false>(maps, p, batch, stream);
    case DType::kFloat32:
      return causal ? launch_attention_staging<kHeadDim, float, true>(maps, p, batch, stream)
                    : launch_attention_staging<kHeadDim, float, false>(maps, p, batch, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace sage::sm90
