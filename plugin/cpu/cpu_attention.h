// The host implementation of SageAttention: computes exactly what docs/OP_CONTRACT.md specifies, for every
// attribute combination, head_dim, layout and GQA ratio. It is the reference the GPU kernels are tested
// against and the kernel of the ORT CPU execution provider.
#pragma once
#include <string>

#include "params.h"

namespace sage {

// `p` holds host pointers. num_threads <= 0 uses every hardware thread. Returns "" on success.
std::string run_cpu_attention(const AttentionParams& p, int num_threads = 0);

}  // namespace sage
