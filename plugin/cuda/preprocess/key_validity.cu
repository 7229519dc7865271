// The key-validity pass of a bool key-padding mask ((B, Skv) or (B|1, 1, 1, Skv)): one bit per key and tile,
// combined with key_lengths, plus the valid-key count (the K mean's divisor) and last valid key + 1 (where every
// later pass and the attention loop stop). One CTA per batch, one warp per 64-key tile at a time: the mask is
// B*Skv bytes, so this pass costs about one launch.
#include <cuda_runtime.h>

#include <cstdint>

#include "preprocess.h"

namespace sage::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads)
    key_bits_kernel(const uint8_t* mask, int64_t stride_b, KeyValidity lengths, uint64_t* bits, int32_t* stats) {
  __shared__ int count, last;
  const int b = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (threadIdx.x == 0) count = 0, last = 0;
  __syncthreads();
  const int len = lengths.length(b);  // `lengths` carries no bits: this is the clamped key_lengths[b] or kv_len
  const uint8_t* row = mask + b * stride_b;
  int my_count = 0, my_last = 0;
  for (int tile = warp; tile < lengths.tiles; tile += kThreads / 32) {
    const int k0 = tile * 64 + lane, k1 = k0 + 32;
    const uint32_t lo = __ballot_sync(0xffffffffu, k0 < len && row[k0] != 0);
    const uint32_t hi = __ballot_sync(0xffffffffu, k1 < len && row[k1] != 0);
    const uint64_t word = lo | (static_cast<uint64_t>(hi) << 32);
    if (lane == 0) {
      bits[static_cast<int64_t>(b) * lengths.tiles + tile] = word;
      my_count += __popcll(word);
      if (word != 0) my_last = max(my_last, tile * 64 + 64 - __clzll(word));
    }
  }
  if (lane == 0) {
    atomicAdd(&count, my_count);
    atomicMax(&last, my_last);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    stats[2 * b] = count;
    stats[2 * b + 1] = last;
  }
}

}  // namespace

cudaError_t launch_key_bits(const void* mask, int64_t stride_b, const KeyValidity& lengths, int batch,
                            uint64_t* bits, int32_t* stats, cudaStream_t stream) {
  KeyValidity only_lengths = lengths;
  only_lengths.bits = nullptr;
  only_lengths.stats = nullptr;
  key_bits_kernel<<<batch, kThreads, 0, stream>>>(static_cast<const uint8_t*>(mask), stride_b, only_lengths, bits,
                                                  stats);
  return cudaGetLastError();
}

}  // namespace sage::cuda
