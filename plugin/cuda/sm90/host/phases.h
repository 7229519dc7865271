// Internal entry of the sm_90a path for tests and benchmarks: the quantization passes and the attention
// kernel can be launched separately (kernel-only timing, inspecting the quantized workspace).
#pragma once
#include <cuda_runtime_api.h>

#include <string>

#include "params.h"

namespace sage::sm90 {

std::string run_sm90_phases(const AttentionParams& p, void* workspace, size_t bytes, cudaStream_t stream,
                            bool quantize, bool attend);

}  // namespace sage::sm90
