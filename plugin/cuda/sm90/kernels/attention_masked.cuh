// The masked attention kernels (key_lengths, bool key-padding masks, general attn_mask; docs/OP_CONTRACT.md
// "Masks"): the unmasked kernel's CTA (attention_kernel.cuh) on the params of its batch, with the mask's
// softmax for the blocks the mask touches (mask_softmax.cuh). Included by attention_{keys,mask}_hd{64,128}.cu.
//
// Per batch b (batch_view, read once per tile from device memory, so masked calls need no host read):
//   kv_len        = the batch's key end: keys at or past it are invalid, never loaded and never scored. The
//                   clamped key_lengths[b] (L_b), or with a key-padding mask its last valid key + 1 (the
//                   key-validity pass's stats). The CTA's producer loads ceil(end / 128) tiles at most (fewer
//                   when causal), and its consumers walk ceil(end / 64) blocks at most, from the same numbers.
//   causal_offset = L_b - Sq for bottom_right (L_b from key_lengths, else Skv: the contract's reference
//                   point, not the key-padding mask's end), 0 for top_left.
#pragma once
#include <cuda_runtime_api.h>

#include "../host/dependent_launch.h"
#include "../host/launch.h"
#include "attention_kernel.cuh"
#include "launch_grid.h"
#include "traits.h"

namespace sage::sm90 {

__device__ __forceinline__ AttnKernelParams batch_view(const AttnKernelParams& p, const AttnMaskParams& m, int b) {
  AttnKernelParams v = p;
  if (m.keys.any()) {
    const int len = m.keys.length(b);  // L_b, clamped to [0, Skv]
    v.kv_len = m.keys.end(b);
    if (m.causal_bottom_right) v.causal_offset = len - p.q_len;
  }
  return v;
}

template <int kHeadDim, typename OutT, bool kCausal, MaskKind kMask>
__global__ void __launch_bounds__(AttnTraits<kHeadDim>::kThreads, 1)
    sage_sm90_masked_attention_kernel(const __grid_constant__ CUtensorMap tm_q,
                                      const __grid_constant__ CUtensorMap tm_k,
                                      const __grid_constant__ CUtensorMap tm_v, const AttnKernelParams p,
                                      const __grid_constant__ AttnMaskParams m) {
#if SAGE_SM90_DEVICE
  attention_persistent<AttnTraits<kHeadDim>, OutT, kCausal, kMask>(&tm_q, &tm_k, &tm_v, p, &m,
                                                                   [&](int b) { return batch_view(p, m, b); });
#else
  (void)tm_q; (void)tm_k; (void)tm_v; (void)p; (void)m;
#endif
}

template <int kHeadDim, typename OutT, bool kCausal, MaskKind kMask>
cudaError_t launch_masked_instance(const AttnTensorMaps& maps, const AttnKernelParams& p, const AttnMaskParams& m,
                                   int batch, cudaStream_t stream) {
  using Tr = AttnTraits<kHeadDim>;
  constexpr int kSmem = attn_smem_bytes<Tr>();
  auto* kernel = &sage_sm90_masked_attention_kernel<kHeadDim, OutT, kCausal, kMask>;
  // Once per instantiation (thread-safe static init); not a stream operation, so capture-safe.
  static const cudaError_t attr = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  if (attr != cudaSuccess) return attr;
  dim3 grid;
  const cudaError_t grid_e = attention_launch_grid<Tr, kCausal>(p, batch, &grid);
  if (grid_e != cudaSuccess) return grid_e;
  return launch_dependent(kernel, grid, dim3(Tr::kThreads), kSmem, stream, maps.q, maps.k, maps.v, p, m);
}

template <int kHeadDim, MaskKind kMask>
cudaError_t launch_masked_for_dtype(const AttnTensorMaps& maps, const AttnKernelParams& p, const AttnMaskParams& m,
                                    DType dtype, bool causal, int batch, cudaStream_t stream) {
  switch (dtype) {
    case DType::kFloat16:
      return causal ? launch_masked_instance<kHeadDim, __half, true, kMask>(maps, p, m, batch, stream)
                    : launch_masked_instance<kHeadDim, __half, false, kMask>(maps, p, m, batch, stream);
    case DType::kBFloat16:
      return causal ? launch_masked_instance<kHeadDim, __nv_bfloat16, true, kMask>(maps, p, m, batch, stream)
                    : launch_masked_instance<kHeadDim, __nv_bfloat16, false, kMask>(maps, p, m, batch, stream);
    case DType::kFloat32:
      return causal ? launch_masked_instance<kHeadDim, float, true, kMask>(maps, p, m, batch, stream)
                    : launch_masked_instance<kHeadDim, float, false, kMask>(maps, p, m, batch, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace sage::sm90
