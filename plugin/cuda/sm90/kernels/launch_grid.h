// Grid of the attention kernels, which walk their tiles grid-stride (attention_kernel.cuh). Non-causal launches
// are persistent (one CTA per SM, the kernels' registers allow no second one): +5% at D = 64, the same at
// D = 128. Causal launches keep one CTA per tile, which the hardware hands out greedily as SMs free up: a static
// persistent split of tiles of unequal cost measured 6-8% slower (docs/HOPPER_KERNEL.md, ledger step 21).
#pragma once
#include <cuda_runtime_api.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

#include "kernel_params.h"

namespace sage::sm90 {

// Test knob: SAGE_SM90_GRID_LIMIT=n caps every attention grid at n CTAs, so that small test shapes run many
// tiles per CTA (Q reuse, the stage sequence across tiles, causal stage releases) under compute-sanitizer.
inline long long attention_grid_limit() {
  const char* v = std::getenv("SAGE_SM90_GRID_LIMIT");
  const long long n = v == nullptr ? 0 : std::atoll(v);
  return n > 0 ? n : LLONG_MAX;
}

inline cudaError_t attention_grid(long long n_work, bool persistent, unsigned* ctas) {
  long long n = std::max(1LL, n_work);
  if (persistent || n > INT_MAX) {
    int device = 0;
    int sms = 0;
    cudaError_t e = cudaGetDevice(&device);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    if (e != cudaSuccess) return e;
    n = std::min<long long>(n, sms);
  }
  *ctas = static_cast<unsigned>(std::min(n, attention_grid_limit()));
  return cudaSuccess;
}

// The grid of one attention launch with tile traits Tr: every (query tile, q head, batch) tile, persistent for
// non-causal launches.
template <class Tr, bool kCausal>
cudaError_t attention_launch_grid(const AttnKernelParams& p, int batch, dim3* grid) {
  const long long tiles = static_cast<long long>((p.q_len + Tr::kBlockM - 1) / Tr::kBlockM) * p.q_heads * batch;
  unsigned ctas = 0;
  const cudaError_t e = attention_grid(tiles, Tr::kPersistent && !kCausal, &ctas);
  *grid = dim3(ctas);
  return e;
}

}  // namespace sage::sm90
