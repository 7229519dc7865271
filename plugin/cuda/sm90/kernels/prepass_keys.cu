// The quantization passes of calls with key_lengths or a bool key-padding mask (prepass.cuh, kKeys): they see
// only each batch's valid keys.
#include <cuda_runtime_api.h>

#include "../host/launch.h"
#include "prepass_launch.cuh"

namespace sage::sm90 {

cudaError_t launch_prepass_keys(const PrepassParams& p, const cuda::KeyValidity& keys, DType dtype,
                                int head_dim_padded, cudaStream_t stream) {
  return launch_prepass_passes<true>(p, keys, dtype, head_dim_padded, stream);
}

}  // namespace sage::sm90
