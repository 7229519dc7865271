// Q and K -> INT8 / INT4 codes with one fp32 scale per quantization group (docs/OP_CONTRACT.md §1-3). One CTA
// per tile of tokens (128 for Q, 64 for K): the contract's groups never cross those tiles, so a tile's group
// maxima are a CTA-local reduction. K is centred on its channel mean first (smooth_k); Q optionally on the
// dequantized tile mean (smooth_q), whose int8 codes the attention kernel needs for the dS correction.
#include <cuda_runtime.h>

#include <cstdint>

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

// Threads per tile: every thread holds 4 passes (or 2 at head_dim 64) of 8 channels, 32 floats at most.
template <bool kIsQuery>
__host__ __device__ constexpr int quantize_threads() { return kIsQuery ? 512 : 256; }

template <typename T, int kDp, int kTileRows, bool kIsQuery>
__global__ void __launch_bounds__(quantize_threads<kIsQuery>())
    quantize_qk_kernel(const QuantizeArgs a, int groups_per_tile) {
  constexpr int kThreads = quantize_threads<kIsQuery>();
  constexpr int kLanes = kDp / 8;           // threads per token row (a power of two dividing 32)
  constexpr int kRows = kThreads / kLanes;  // rows per pass
  constexpr int kPasses = kTileRows / kRows;
  static_assert(kPasses * kRows == kTileRows, "tile rows must be whole passes");
  __shared__ float red[kIsQuery ? kRows : 1][kDp];
  __shared__ float tile_mean[kDp];
  __shared__ unsigned group_amax[32];  // float bits: non-negative floats order like their bits
  __shared__ unsigned mean_amax;

  const TokenView& v = a.src;
  const int64_t bh = blockIdx.x;
  const int tile = blockIdx.y, tiles = gridDim.y;
  const int tid = threadIdx.x;
  const int r0 = tid / kLanes, lane_in_row = tid % kLanes, c = 8 * lane_in_row;
  const int tile_begin = tile * kTileRows;
  int n_valid = min(kTileRows, v.len - tile_begin);
  const T* base = slice_base<T>(v, bh);

  // K with a mask / key_lengths: tiles past the batch's last valid key are never read by the attention kernel,
  // so they are not written either; invalid keys inside a tile become zero rows like the padding rows.
  [[maybe_unused]] const int batch = static_cast<int>(bh / v.heads);
  bool row_ok[kPasses];
  if constexpr (!kIsQuery) {
    if (a.keys.any()) {
      const int end = a.keys.end(batch);
      if (tile_begin >= end) return;
      n_valid = min(n_valid, end - tile_begin);
    }
  }
#pragma unroll
  for (int p = 0; p < kPasses; ++p) {
    const int r = r0 + p * kRows;
    row_ok[p] = r < n_valid;
    if constexpr (!kIsQuery) {
      if (a.keys.bits != nullptr) row_ok[p] = row_ok[p] && a.keys.valid(batch, tile_begin + r);
    }
  }

  if (tid < 32) group_amax[tid] = 0u;
  if (tid == 0) mean_amax = 0u;

  // The tile stays in registers as loaded (16-bit values for fp16/bf16: half the registers of floats, so more
  // CTAs fit per SM to keep loads in flight); `values` converts and centres one pass on each use.
  using Raw = typename RawChunk<T>::type;
  Raw raw[kPasses];
#pragma unroll
  for (int p = 0; p < kPasses; ++p) {
    raw[p] = load_raw_chunk<T>(v, base, tile_begin + r0 + p * kRows, c, row_ok[p]);  // padding: zeros, codes 0
  }

  float mu[8];  // smooth_k: K's channel mean; smooth_q: the dequantized tile mean (set below)
#pragma unroll
  for (int i = 0; i < 8; ++i) mu[i] = a.channel_mean != nullptr ? a.channel_mean[bh * kDp + c + i] : 0.f;
  auto values = [&](int p, float (&x)[8]) {
    raw_to_float<T>(raw[p], x);
    if (row_ok[p]) {  // padding (and invalid) rows stay exactly zero
#pragma unroll
      for (int i = 0; i < 8; ++i) x[i] -= mu[i];
    }
  };

  if constexpr (kIsQuery) {
    if (a.smooth_tile_mean) {
      float sum[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int p = 0; p < kPasses; ++p) {
        float x[8];
        values(p, x);  // mu is still zero here: the raw Q values
#pragma unroll
        for (int i = 0; i < 8; ++i) sum[i] += x[i];  // padding rows are zero
      }
#pragma unroll
      for (int i = 0; i < 8; ++i) red[r0][c + i] = sum[i];
      __syncthreads();
      if (tid < kDp) {
        float total = red[0][tid];
        for (int w = 1; w < kRows; ++w) total += red[w][tid];
        const float mean = total / static_cast<float>(n_valid);
        tile_mean[tid] = mean;
        atomicMax(&mean_amax, __float_as_uint(fabsf(mean)));
      }
      __syncthreads();
      const float amax = __uint_as_float(mean_amax);
      const float delta = amax / 127.f;
      const int64_t tile_index = bh * tiles + tile;
      if (tid < kDp) {
        const int code = amax > 0.f ? quantize_code(tile_mean[tid], 127.f / amax, 127.f) : 0;
        a.tile_mean_codes[tile_index * kDp + tid] = static_cast<int8_t>(code);
        // Contract §1: the dequantized mean is subtracted, so that dS (built from the same codes) adds back
        // exactly what was removed.
        tile_mean[tid] = delta * static_cast<float>(code);
      }
      if (tid == 0) a.tile_mean_scales[tile_index] = delta;
      __syncthreads();
#pragma unroll
      for (int i = 0; i < 8; ++i) mu[i] = tile_mean[c + i];
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
  for (int p = 0; p < kPasses; ++p) {
    const int r = r0 + p * kRows;
    float x[8];
    values(p, x);
    float m = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) m = fmaxf(m, fabsf(x[i]));
#pragma unroll
    for (int off = kLanes / 2; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    if (lane_in_row == 0 && row_ok[p]) atomicMax(&group_amax[local_group(r)], __float_as_uint(m));
  }
  __syncthreads();

  const float qmax = static_cast<float>(a.qmax);
  const bool int4 = a.qmax == 7;
  const int row_bytes = int4 ? kDp / 2 : kDp;
#pragma unroll
  for (int p = 0; p < kPasses; ++p) {
    const int r = r0 + p * kRows;
    const float amax = __uint_as_float(group_amax[local_group(r)]);
    const float inv = amax > 0.f ? qmax / amax : 0.f;
    float x[8];
    values(p, x);
    int q[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) q[i] = amax > 0.f ? quantize_code(x[i], inv, qmax) : 0;
    int8_t* row = a.codes + (bh * a.len_pad + tile_begin + r) * row_bytes;
    if (int4) {  // channel 2m in the low nibble of byte m
      uint32_t packed = 0;
#pragma unroll
      for (int i = 0; i < 8; ++i) packed |= static_cast<uint32_t>(q[i] & 0xF) << (4 * i);
      *reinterpret_cast<uint32_t*>(row + c / 2) = packed;
    } else {
      uint2 packed;
      packed.x = (q[0] & 0xFF) | ((q[1] & 0xFF) << 8) | ((q[2] & 0xFF) << 16) | (static_cast<uint32_t>(q[3] & 0xFF) << 24);
      packed.y = (q[4] & 0xFF) | ((q[5] & 0xFF) << 8) | ((q[6] & 0xFF) << 16) | (static_cast<uint32_t>(q[7] & 0xFF) << 24);
      *reinterpret_cast<uint2*>(row + c) = packed;
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
  template <typename T, int kDp>
  cudaError_t run() const {
    const dim3 grid(a.src.batch * a.src.heads, a.len_pad / kTileRows);
    quantize_qk_kernel<T, kDp, kTileRows, kIsQuery>
        <<<grid, quantize_threads<kIsQuery>(), 0, stream>>>(a, groups_per_tile);
    return cudaGetLastError();
  }
};

}  // namespace

cudaError_t launch_quantize_q(const QuantizeArgs& a, cudaStream_t stream) {
  return with_type_and_dim(a.src.dtype, a.head_dim_pad,
                           QuantizeLaunch<kBlockQ, true>{a, q_groups_per_tile(a.granularity), stream});
}

cudaError_t launch_quantize_k(const QuantizeArgs& a, cudaStream_t stream) {
  return with_type_and_dim(a.src.dtype, a.head_dim_pad,
                           QuantizeLaunch<kBlockK, false>{a, k_groups_per_tile(a.granularity), stream});
}

}  // namespace sage::cuda
