// Q and K -> INT8 / INT4 codes with one fp32 scale per quantization group (docs/OP_CONTRACT.md §1-3). One CTA
// per tile of tokens (128 for Q, 64 for K): the contract's groups never cross those tiles, so a tile's group
// maxima are a CTA-local reduction. K is centred on its channel mean first (smooth_k); Q optionally on the
// dequantized tile mean (smooth_q), whose int8 codes the attention kernel needs for the dS correction.
#include <cuda_runtime.h>

#include <cstdint>

#include "../common/warp_reduce.cuh"
#include "preprocess.h"
#include "quant_groups.h"
#include "token_rows.cuh"

namespace sage::cuda {

int q_groups_per_tile(schema::QkGranularity g) {
  switch (g) {
    case schema::QkGranularity::kPerBlock: return 1;
    case schema::QkGranularity::kPerWarp: return kBlockQ / kWarpQ;
    default: return (kBlockQ / kWarpQ) * kQGroupsPerWarpThread;
  }
}

int k_groups_per_tile(schema::QkGranularity g) {
  return g == schema::QkGranularity::kPerThread ? kKGroupsPerBlockThread : 1;
}

namespace {

// Contract §3: inv = qmax / amax, code = clamp(round_half_away(x * inv)); amax = 0 gives code 0.
__device__ __forceinline__ int quantize_code(float x, float inv, float qmax) {
  return static_cast<int>(fminf(fmaxf(roundf(x * inv), -qmax), qmax));
}

template <typename T, int kTileRows, bool kIsQuery>
__global__ void __launch_bounds__(kPrepThreads) quantize_qk_kernel(const QuantizeArgs a, int groups_per_tile) {
  constexpr int kRowsPerWarp = kTileRows / kPrepWarps;
  __shared__ float red[kPrepWarps][128];
  __shared__ float tile_mean[128];
  __shared__ unsigned group_amax[32];  // float bits: non-negative floats order like their bits
  __shared__ unsigned mean_amax;

  const TokenView& v = a.src;
  const int64_t bh = blockIdx.x;
  const int tile = blockIdx.y, tiles = gridDim.y;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, c = 4 * lane;
  const int dp = a.head_dim_pad;
  const int tile_begin = tile * kTileRows;
  const int n_valid = min(kTileRows, v.len - tile_begin);
  const T* base = slice_base<T>(v, bh);

  if (tid < 32) group_amax[tid] = 0u;
  if (tid == 0) mean_amax = 0u;

  float x[kRowsPerWarp][4];
#pragma unroll
  for (int k = 0; k < kRowsPerWarp; ++k) {
    const int r = warp + kPrepWarps * k;
    if (r < n_valid) {
      load_row4<T>(v, base, tile_begin + r, lane, x[k]);
    } else {
      x[k][0] = x[k][1] = x[k][2] = x[k][3] = 0.f;  // padding rows stay exactly zero: codes 0
    }
  }

  if (a.channel_mean != nullptr) {
    float mu[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) mu[i] = c + i < dp ? a.channel_mean[bh * dp + c + i] : 0.f;
#pragma unroll
    for (int k = 0; k < kRowsPerWarp; ++k) {
      if (warp + kPrepWarps * k < n_valid) {
#pragma unroll
        for (int i = 0; i < 4; ++i) x[k][i] -= mu[i];
      }
    }
  }

  if constexpr (kIsQuery) {
    if (a.smooth_tile_mean) {
      float sum[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int k = 0; k < kRowsPerWarp; ++k) {
#pragma unroll
        for (int i = 0; i < 4; ++i) sum[i] += x[k][i];  // padding rows are zero
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) red[warp][c + i] = sum[i];
      __syncthreads();
      if (tid < 128) {
        float s = red[0][tid];
#pragma unroll
        for (int w = 1; w < kPrepWarps; ++w) s += red[w][tid];
        const float mean = tid < dp ? s / static_cast<float>(n_valid) : 0.f;
        tile_mean[tid] = mean;
        atomicMax(&mean_amax, __float_as_uint(fabsf(mean)));
      }
      __syncthreads();
      const float amax = __uint_as_float(mean_amax);
      const int64_t tile_index = bh * tiles + tile;
      const float delta = amax / 127.f;
      if (tid < 128) {
        const int code = tid < dp && amax > 0.f ? quantize_code(tile_mean[tid], 127.f / amax, 127.f) : 0;
        if (tid < dp) a.tile_mean_codes[tile_index * dp + tid] = static_cast<int8_t>(code);
        // Contract §1: the dequantized mean is subtracted, so that dS (built from the same codes) adds back
        // exactly what was removed.
        tile_mean[tid] = delta * static_cast<float>(code);
      }
      if (tid == 0) a.tile_mean_scales[tile_index] = delta;
      __syncthreads();
#pragma unroll
      for (int k = 0; k < kRowsPerWarp; ++k) {
        if (warp + kPrepWarps * k < n_valid) {
#pragma unroll
          for (int i = 0; i < 4; ++i) x[k][i] -= tile_mean[c + i];
        }
      }
    }
  }
  __syncthreads();  // group_amax is zeroed

  const auto gran = a.granularity;
  const int64_t group_base = static_cast<int64_t>(tile) * groups_per_tile;
  auto local_group = [&](int r) {
    const int64_t token = tile_begin + r;
    return static_cast<int>((kIsQuery ? q_group_of(token, gran) : k_group_of(token, gran)) - group_base);
  };

#pragma unroll
  for (int k = 0; k < kRowsPerWarp; ++k) {
    const int r = warp + kPrepWarps * k;
    float m = fmaxf(fmaxf(fabsf(x[k][0]), fabsf(x[k][1])), fmaxf(fabsf(x[k][2]), fabsf(x[k][3])));
    m = warp_max(m);
    if (lane == 0 && r < n_valid) atomicMax(&group_amax[local_group(r)], __float_as_uint(m));
  }
  __syncthreads();

  const float qmax = static_cast<float>(a.qmax);
  const bool int4 = a.qmax == 7;
  const int row_bytes = int4 ? dp / 2 : dp;
#pragma unroll
  for (int k = 0; k < kRowsPerWarp; ++k) {
    const int r = warp + kPrepWarps * k;
    if (c >= dp) continue;
    const float amax = __uint_as_float(group_amax[local_group(r)]);
    const float inv = amax > 0.f ? qmax / amax : 0.f;
    int q[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) q[i] = amax > 0.f ? quantize_code(x[k][i], inv, qmax) : 0;
    int8_t* row = a.codes + (bh * a.len_pad + tile_begin + r) * row_bytes;
    if (int4) {
      const uint32_t packed = (q[0] & 0xF) | ((q[1] & 0xF) << 4) | ((q[2] & 0xF) << 8) | ((q[3] & 0xF) << 12);
      *reinterpret_cast<uint16_t*>(row + c / 2) = static_cast<uint16_t>(packed);
    } else {
      const uint32_t packed = (q[0] & 0xFF) | ((q[1] & 0xFF) << 8) | ((q[2] & 0xFF) << 16) | (static_cast<uint32_t>(q[3] & 0xFF) << 24);
      *reinterpret_cast<uint32_t*>(row + c) = packed;
    }
  }
  if (tid < groups_per_tile) {
    a.scales[bh * a.slots + group_base + tid] = __uint_as_float(group_amax[tid]) / qmax;
  }
}

template <int kTileRows, bool kIsQuery>
struct QuantizeLaunch {
  const QuantizeArgs& a;
  int groups_per_tile;
  cudaStream_t stream;
  template <typename T>
  cudaError_t run() const {
    const dim3 grid(a.src.batch * a.src.heads, a.len_pad / kTileRows);
    quantize_qk_kernel<T, kTileRows, kIsQuery><<<grid, kPrepThreads, 0, stream>>>(a, groups_per_tile);
    return cudaGetLastError();
  }
};

}  // namespace

cudaError_t launch_quantize_q(const QuantizeArgs& a, cudaStream_t stream) {
  return with_cuda_type(a.src.dtype, QuantizeLaunch<kBlockQ, true>{a, q_groups_per_tile(a.granularity), stream});
}

cudaError_t launch_quantize_k(const QuantizeArgs& a, cudaStream_t stream) {
  return with_cuda_type(a.src.dtype, QuantizeLaunch<kBlockK, false>{a, k_groups_per_tile(a.granularity), stream});
}

}  // namespace sage::cuda
