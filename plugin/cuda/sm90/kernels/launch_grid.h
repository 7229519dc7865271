// Grid of the attention kernels, which walk their tiles grid-stride (attention_kernel.cuh). Non-causal launches
// are persistent (one CTA per SM, the kernels' registers allow no second one): +5% at D = 64, the same at
// D = 128. Causal launches keep one CTA per tile, which the hardware hands out greedily as SMs free up: a static
// persistent split of tiles of unequal cost measured 6-8% slower (docs/HOPPER_KERNEL.md, ledger step 21).
#pragma once
#include <cuda_runtime_api.h>

#include <algorithm>
#include <climits>

namespace sage::sm90 {

inline cudaError_t attention_grid(long long n_work, bool persistent, unsigned* ctas) {
  if (!persistent && n_work <= INT_MAX) {
    *ctas = static_cast<unsigned>(std::max(1LL, n_work));
    return cudaSuccess;
  }
  int device = 0;
  int sms = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e != cudaSuccess) return e;
  *ctas = static_cast<unsigned>(std::max(1LL, std::min<long long>(n_work, sms)));
  return cudaSuccess;
}

}  // namespace sage::sm90
