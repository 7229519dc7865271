// Launch template of the attention kernel; included only by the instantiation files.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

#include "attention_kernel.cuh"
#include "launch.h"

namespace sage::cuda {

template <class Traits>
cudaError_t launch_attention(const AttentionArgs& args, cudaStream_t stream) {
  constexpr int kSmem = Traits::kSmemBytes + Traits::kBlockK * static_cast<int>(sizeof(int));  // + smooth-Q delta_s
  auto* kernel = &sage_attention_kernel<Traits>;
  // Raising the dynamic shared-memory limit is a per-device function attribute: set it once per device. It
  // is not a stream operation, so it is also fine during graph capture.
  static std::atomic<uint64_t> configured_devices{0};
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  const uint64_t bit = device < 64 ? (uint64_t{1} << device) : 0;
  if (bit == 0 || !(configured_devices.load(std::memory_order_acquire) & bit)) {
    err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
    if (err != cudaSuccess) return err;
    // Ask for the largest shared-memory carveout so that two CTAs fit on an SM.
    err = cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, 100);
    if (err != cudaSuccess) return err;
    configured_devices.fetch_or(bit, std::memory_order_acq_rel);
  }
  const dim3 grid((args.q_len + Traits::kBlockQ - 1) / Traits::kBlockQ, args.q_heads, args.batch);
  kernel<<<grid, Traits::kThreads, kSmem, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace sage::cuda

// One explicit instantiation per configuration; the instantiation files expand this.
#define SAGE_INSTANTIATE_ATTENTION(HD, INT4, FP8, ACC16, MASKS)                                                   \
  template cudaError_t sage::cuda::launch_attention<sage::cuda::AttentionTraits<HD, INT4, FP8, ACC16, MASKS>>( \
      const sage::cuda::AttentionArgs&, cudaStream_t);
