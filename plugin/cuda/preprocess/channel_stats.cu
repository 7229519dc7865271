// Per-channel statistics over all tokens of a (batch, head): the K mean for smooth_k and V's per-channel
// amax for the FP8 scale. Two stages so that short grids (few heads) still spread over the GPU and the sums
// stay deterministic: partials per split of tokens, then a finalize kernel per (batch, head).
#include <cuda_runtime.h>

#include <type_traits>

#include "../common/convert.cuh"
#include "preprocess.h"
#include "token_rows.cuh"

namespace sage::cuda {

namespace {

constexpr int kThreads = 256;

template <typename T, int kDp, bool kAbsMax>
__global__ void __launch_bounds__(kThreads)
    channel_partials_kernel(const TokenView v, int tokens_per_split, int splits, const KeyValidity keys,
                            float* partials) {
  constexpr int kLanes = kDp / 8;             // threads per token row
  constexpr int kRows = kThreads / kLanes;    // rows per pass
  constexpr int kUnroll = 4;                  // passes whose loads are in flight together
  __shared__ float red[kRows][kDp];
  const int64_t bh = blockIdx.x;  // batch*heads may exceed the 65535 limit of grid.y; splits may not
  const int split = blockIdx.y;
  const int r = threadIdx.x / kLanes, c = 8 * (threadIdx.x % kLanes);
  const T* base = slice_base<T>(v, bh);
  const int begin = split * tokens_per_split;
  int end = min(v.len, begin + tokens_per_split);
  // Invalid keys (mask / key_lengths) are left out of K's mean and V's amax; past the last valid key nothing is
  // read, so padding costs no bandwidth. With key_lengths alone every key before the end is valid.
  const int batch = static_cast<int>(bh / v.heads);
  if (keys.any()) end = min(end, keys.end(batch));
  const bool holes = keys.bits != nullptr;
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  for (int tok0 = begin + r; tok0 < end; tok0 += kRows * kUnroll) {
    float x[kUnroll][8];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int tok = tok0 + u * kRows;
      if (tok < end && (!holes || keys.valid(batch, tok))) {
        load_chunk<T>(v, base, tok, c, x[u]);
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) x[u][i] = 0.f;
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[i] = kAbsMax ? fmaxf(acc[i], fabsf(x[u][i])) : acc[i] + x[u][i];
    }
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) red[r][c + i] = acc[i];
  __syncthreads();
  const int ch = threadIdx.x;
  if (ch < kDp) {
    float sum = red[0][ch];
#pragma unroll 8
    for (int w = 1; w < kRows; ++w) sum = kAbsMax ? fmaxf(sum, red[w][ch]) : sum + red[w][ch];
    partials[(bh * splits + split) * kDp + ch] = sum;
  }
}

__global__ void mean_finalize_kernel(const float* partials, int heads, int splits, int head_dim_pad, int len,
                                     const KeyValidity keys, float* mean) {
  const int64_t bh = blockIdx.x;
  const int c = threadIdx.x;
  float s = 0.f;
  for (int i = 0; i < splits; ++i) s += partials[(bh * splits + i) * head_dim_pad + c];
  // The mean of the valid keys only; a batch without any keeps zero rows (nothing is scored there).
  const int n = keys.any() ? keys.count(static_cast<int>(bh / heads)) : len;
  mean[bh * head_dim_pad + c] = n > 0 ? s / static_cast<float>(n) : 0.f;
}

__global__ void v_scale_finalize_kernel(const float* partials, int splits, int head_dim_pad, float v_range,
                                        float* v_scale, float* v_inv) {
  const int64_t bh = blockIdx.x;
  const int c = threadIdx.x;
  float amax = 0.f;
  for (int i = 0; i < splits; ++i) amax = fmaxf(amax, partials[(bh * splits + i) * head_dim_pad + c]);
  // Contract §6: V8 = e4m3(V * (Vr / amax)), dV = amax / Vr; a zero channel gets dV = 0 and codes 0.
  v_scale[bh * head_dim_pad + c] = amax / v_range;
  v_inv[bh * head_dim_pad + c] = amax > 0.f ? v_range / amax : 0.f;
}

struct PartialsLaunch {
  const TokenView& v;
  ChannelReduce op;
  int tokens_per_split, splits;
  const KeyValidity& keys;
  float* partials;
  cudaStream_t stream;
  template <typename T, int kDp>
  cudaError_t run() const {
    const dim3 grid(v.batch * v.heads, splits);
    auto* kernel = op == ChannelReduce::kAbsMax ? &channel_partials_kernel<T, kDp, true>
                                                : &channel_partials_kernel<T, kDp, false>;
    kernel<<<grid, kThreads, 0, stream>>>(v, tokens_per_split, splits, keys, partials);
    return cudaGetLastError();
  }
};

}  // namespace

cudaError_t launch_channel_partials(const TokenView& x, ChannelReduce op, int head_dim_pad, int tokens_per_split,
                                    int splits, const KeyValidity& keys, float* partials, cudaStream_t stream) {
  return with_type_and_dim(x.dtype, head_dim_pad,
                           PartialsLaunch{x, op, tokens_per_split, splits, keys, partials, stream});
}

cudaError_t launch_mean_finalize(const float* partials, int bh_count, int heads, int splits, int head_dim_pad,
                                 int len, const KeyValidity& keys, float* mean, cudaStream_t stream) {
  mean_finalize_kernel<<<bh_count, head_dim_pad, 0, stream>>>(partials, heads, splits, head_dim_pad, len, keys, mean);
  return cudaGetLastError();
}

cudaError_t launch_v_scale_finalize(const float* partials, int bh_count, int splits, int head_dim_pad,
                                    float v_range, float* v_scale, float* v_inv, cudaStream_t stream) {
  v_scale_finalize_kernel<<<bh_count, head_dim_pad, 0, stream>>>(partials, splits, head_dim_pad, v_range, v_scale,
                                                                 v_inv);
  return cudaGetLastError();
}

}  // namespace sage::cuda
