// Launches of the two quantization passes (prepass.cuh) for every input type and padded head dim; the passes
// of calls with key_lengths or a key-padding mask (kKeys) are instantiated in prepass_keys.cu.
#include <cuda_runtime_api.h>

#include <atomic>

#include "../host/launch.h"
#include "prepass_launch.cuh"

namespace sage::sm90 {
namespace {

__global__ void probe_kernel() {}

}  // namespace

cudaError_t launch_prepass(const PrepassParams& p, DType dtype, int head_dim_padded, cudaStream_t stream) {
  return launch_prepass_passes<false>(p, cuda::KeyValidity{}, dtype, head_dim_padded, stream);
}

int max_kv_cluster(DType dtype, int head_dim_padded) {
  // Per device (the answer depends on its GPC layout), found once: an occupancy query per call would cost more than
  // the launch it decides.
  constexpr int kDevices = 64;
  static std::atomic<int> known[kDevices][3][2] = {};
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kDevices) {
    cudaGetLastError();
    return 8;
  }
  const int t = dtype == DType::kFloat16 ? 0 : dtype == DType::kBFloat16 ? 1 : 2;
  std::atomic<int>& slot = known[device][t][head_dim_padded == 64 ? 0 : 1];
  int v = slot.load(std::memory_order_relaxed);
  if (v == 0) {
    bool fits = false;
    switch (dtype) {
      case DType::kFloat16:
        fits = head_dim_padded == 64 ? clustered_prepass_fits<__half, 64>(16) : clustered_prepass_fits<__half, 128>(16);
        break;
      case DType::kBFloat16:
        fits = head_dim_padded == 64 ? clustered_prepass_fits<__nv_bfloat16, 64>(16)
                                     : clustered_prepass_fits<__nv_bfloat16, 128>(16);
        break;
      case DType::kFloat32:
        fits = head_dim_padded == 64 ? clustered_prepass_fits<float, 64>(16) : clustered_prepass_fits<float, 128>(16);
        break;
    }
    v = fits ? 16 : 8;
    slot.store(v, std::memory_order_relaxed);
  }
  return v;
}

const void* sm90_probe_kernel() { return reinterpret_cast<const void*>(&probe_kernel); }

}  // namespace sage::sm90
