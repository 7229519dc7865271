// Host-side entry to the attention kernels: one explicit instantiation per traits type lives in
// plugin/cuda/instantiations/, and dispatch_attention picks it from run-time flags.
#pragma once
#include <cuda_runtime_api.h>

#include "attention_args.h"
#include "traits.h"

namespace sage::cuda {

template <class Traits>
cudaError_t launch_attention(const AttentionArgs& args, cudaStream_t stream);

struct AttentionConfig {
  int head_dim = 128;  // padded: 64 or 128
  bool int4 = false;
  bool fp8_pv = false;
  bool accum_f16 = false;
  bool masks = false;  // the mask kernel (key-padding bits or a general attn_mask); key_lengths alone need not
};

cudaError_t dispatch_attention(const AttentionConfig& config, const AttentionArgs& args, cudaStream_t stream);

}  // namespace sage::cuda
