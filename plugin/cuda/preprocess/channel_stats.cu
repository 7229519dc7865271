// Per-channel statistics over all tokens of a (batch, head): the K mean for smooth_k and V's per-channel
// amax for the FP8 scale. Two stages so that short grids (few heads) still spread over the GPU and the sums
// stay deterministic: partials per split of tokens, then a finalize kernel per (batch, head).
#include <cuda_runtime.h>

#include "../common/convert.cuh"
#include "preprocess.h"
#include "token_rows.cuh"

namespace sage::cuda {

namespace {

template <typename T, bool kAbsMax>
__global__ void __launch_bounds__(kPrepThreads)
    channel_partials_kernel(const TokenView v, int head_dim_pad, int tokens_per_split, int splits, float* partials) {
  __shared__ float red[kPrepWarps][128];
  const int64_t bh = blockIdx.x;  // batch*heads may exceed the 65535 limit of grid.y; splits may not
  const int split = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const T* base = slice_base<T>(v, bh);
  const int begin = split * tokens_per_split;
  const int end = min(v.len, begin + tokens_per_split);
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  // kUnroll rows per warp per step, all loads issued before any use: a bandwidth-bound pass needs many
  // loads in flight, which a loop carrying `acc` one row at a time would not give.
  constexpr int kUnroll = 8;
  for (int tok0 = begin + warp; tok0 < end; tok0 += kPrepWarps * kUnroll) {
    float x[kUnroll][4];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int tok = tok0 + u * kPrepWarps;
      if (tok < end) {
        load_row4<T>(v, base, tok, lane, x[u]);
      } else {
        x[u][0] = x[u][1] = x[u][2] = x[u][3] = 0.f;
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[i] = kAbsMax ? fmaxf(acc[i], fabsf(x[u][i])) : acc[i] + x[u][i];
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) red[warp][4 * lane + i] = acc[i];
  __syncthreads();
  const int c = threadIdx.x;
  if (c < head_dim_pad) {
    float r = red[0][c];
#pragma unroll
    for (int w = 1; w < kPrepWarps; ++w) r = kAbsMax ? fmaxf(r, red[w][c]) : r + red[w][c];
    partials[(bh * splits + split) * head_dim_pad + c] = r;
  }
}

__global__ void mean_finalize_kernel(const float* partials, int splits, int head_dim_pad, float len, float* mean) {
  const int64_t bh = blockIdx.x;
  const int c = threadIdx.x;
  float s = 0.f;
  for (int i = 0; i < splits; ++i) s += partials[(bh * splits + i) * head_dim_pad + c];
  mean[bh * head_dim_pad + c] = s / len;
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
  int head_dim_pad, tokens_per_split, splits;
  float* partials;
  cudaStream_t stream;
  template <typename T>
  cudaError_t run() const {
    const dim3 grid(v.batch * v.heads, splits);
    if (op == ChannelReduce::kAbsMax) {
      channel_partials_kernel<T, true><<<grid, kPrepThreads, 0, stream>>>(v, head_dim_pad, tokens_per_split, splits,
                                                                         partials);
    } else {
      channel_partials_kernel<T, false><<<grid, kPrepThreads, 0, stream>>>(v, head_dim_pad, tokens_per_split, splits,
                                                                          partials);
    }
    return cudaGetLastError();
  }
};

}  // namespace

cudaError_t launch_channel_partials(const TokenView& x, ChannelReduce op, int head_dim_pad, int tokens_per_split,
                                    int splits, float* partials, cudaStream_t stream) {
  return with_cuda_type(x.dtype, PartialsLaunch{x, op, head_dim_pad, tokens_per_split, splits, partials, stream});
}

cudaError_t launch_mean_finalize(const float* partials, int bh_count, int splits, int head_dim_pad, int len,
                                 float* mean, cudaStream_t stream) {
  mean_finalize_kernel<<<bh_count, head_dim_pad, 0, stream>>>(partials, splits, head_dim_pad, static_cast<float>(len), mean);
  return cudaGetLastError();
}

cudaError_t launch_v_scale_finalize(const float* partials, int bh_count, int splits, int head_dim_pad,
                                    float v_range, float* v_scale, float* v_inv, cudaStream_t stream) {
  v_scale_finalize_kernel<<<bh_count, head_dim_pad, 0, stream>>>(partials, splits, head_dim_pad, v_range, v_scale,
                                                                 v_inv);
  return cudaGetLastError();
}

}  // namespace sage::cuda
