#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace sage::cuda {

// out[i] = E4M3 code of in[i]; method 0 = the attention kernel's packed PTX conversion (sm_89+ only),
// 1 = the cuda_fp8.h conversion the V quantizer uses.
cudaError_t launch_e4m3_probe(const float* in, uint8_t* out, int64_t n, int method, cudaStream_t stream);

}  // namespace sage::cuda
