// Launches of the two quantization passes (prepass.cuh) for every input type and padded head dim; the passes
// of calls with key_lengths or a key-padding mask (kKeys) are instantiated in prepass_keys.cu.
#include <cuda_runtime_api.h>

#include "../host/launch.h"
#include "prepass_launch.cuh"

namespace sage::sm90 {
namespace {

__global__ void probe_kernel() {}

}  // namespace

cudaError_t launch_prepass(const PrepassParams& p, DType dtype, int head_dim_padded, cudaStream_t stream) {
  return launch_prepass_passes<false>(p, cuda::KeyValidity{}, dtype, head_dim_padded, stream);
}

const void* sm90_probe_kernel() { return reinterpret_cast<const void*>(&probe_kernel); }

}  // namespace sage::sm90
