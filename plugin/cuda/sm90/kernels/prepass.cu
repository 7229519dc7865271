// Launches of the two quantization passes (prepass.cuh) for every input type and padded head dim.
#include <cuda_runtime_api.h>

#include "../host/launch.h"
#include "prepass.cuh"

namespace sage::sm90 {
namespace {

__global__ void probe_kernel() {}

template <typename T, int kHD>
cudaError_t launch_typed(const PrepassParams& p, cudaStream_t stream) {
  const int pass1 = p.q_blocks + p.batch * p.kv_heads * p.stat_chunks;
  sm90_prepass_q_stats_kernel<T, kHD><<<pass1, kPrepassThreads, 0, stream>>>(p);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  const int pass2 = p.batch * p.kv_heads * p.kv_tiles;
  sm90_prepass_kv_kernel<T, kHD><<<pass2, kPrepassThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <int kHD>
cudaError_t launch_hd(const PrepassParams& p, DType dtype, cudaStream_t stream) {
  switch (dtype) {
    case DType::kFloat16: return launch_typed<__half, kHD>(p, stream);
    case DType::kBFloat16: return launch_typed<__nv_bfloat16, kHD>(p, stream);
    case DType::kFloat32: return launch_typed<float, kHD>(p, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t launch_prepass(const PrepassParams& p, DType dtype, int head_dim_padded, cudaStream_t stream) {
  return head_dim_padded == 64 ? launch_hd<64>(p, dtype, stream) : launch_hd<128>(p, dtype, stream);
}

const void* sm90_probe_kernel() { return reinterpret_cast<const void*>(&probe_kernel); }

}  // namespace sage::sm90
