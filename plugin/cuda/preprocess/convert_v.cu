// V -> the P~.V B operand. FP16: padded token rows of fp16 (only when V cannot be read in place). FP8: per-channel
// scaled E4M3, transposed to channel rows so that ldmatrix yields the m16n8k32 B fragment, with the tokens of
// each 16-group permuted (0,1,8,9,2,3,10,11,4,5,12,13,6,7,14,15) to match the P~ fragment built from the Q.K^T
// accumulator registers.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "../common/convert.cuh"
#include "preprocess.h"
#include "quant_groups.h"
#include "token_rows.cuh"

namespace sage::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kTile = kBlockK;  // 64 tokens per CTA

// Tokens of V that are read: below the batch's last valid key (all of v.len without a mask / key_lengths).
__device__ __forceinline__ int v_end(const TokenView& v, const KeyValidity& keys, int64_t bh) {
  return keys.any() ? keys.end(static_cast<int>(bh / v.heads)) : v.len;
}

// Invalid keys inside the read range (a key-padding mask's holes) become zero rows.
__device__ __forceinline__ bool v_row_valid(const TokenView& v, const KeyValidity& keys, int64_t bh, int tok, int end) {
  return tok < end && (keys.bits == nullptr || keys.valid(static_cast<int>(bh / v.heads), tok));
}

template <typename T, int kDp>
__global__ void __launch_bounds__(kThreads)
    convert_v_f16_kernel(const TokenView v, int len_pad, const KeyValidity keys, __half* dst) {
  constexpr int kLanes = kDp / 8, kRows = kThreads / kLanes;
  const int64_t bh = blockIdx.x;
  const int tile_begin = blockIdx.y * kTile;
  const int end = v_end(v, keys, bh);
  if (tile_begin >= end) return;  // never read by the attention kernel
  const int r0 = threadIdx.x / kLanes, c = 8 * (threadIdx.x % kLanes);
  const T* base = slice_base<T>(v, bh);
#pragma unroll
  for (int p = 0; p < kTile / kRows; ++p) {
    const int tok = tile_begin + r0 + p * kRows;
    float x[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    if (v_row_valid(v, keys, bh, tok, end)) load_chunk<T>(v, base, tok, c, x);
    uint4 packed;
    packed.x = pack_half2(x[0], x[1]);
    packed.y = pack_half2(x[2], x[3]);
    packed.z = pack_half2(x[4], x[5]);
    packed.w = pack_half2(x[6], x[7]);
    *reinterpret_cast<uint4*>(dst + (bh * len_pad + tok) * kDp + c) = packed;
  }
}

// Physical token (within a 16-group) stored at logical position l: the FP8 P~ fragment of lane t holds keys
// 2t, 2t+1, 8+2t, 9+2t at MMA k positions 4t..4t+3.
__device__ __forceinline__ int fp8_token_of_slot(int l) { return 2 * (l >> 2) + (l & 1) + ((l & 2) ? 8 : 0); }

template <typename T, int kDp>
__global__ void __launch_bounds__(kThreads)
    quantize_v_fp8_kernel(const TokenView v, int len_pad, const KeyValidity keys, const float* v_inv, uint8_t* dst) {
  constexpr int kLanes = kDp / 8, kRows = kThreads / kLanes;
  constexpr int kPitch = kDp + 4;  // bytes per token row in smem; the pad spreads the column reads over banks
  __shared__ __align__(16) uint8_t tile[kTile][kPitch];
  const int64_t bh = blockIdx.x;
  const int tile_begin = blockIdx.y * kTile;
  const int end = v_end(v, keys, bh);
  if (tile_begin >= end) return;  // never read by the attention kernel
  const int tid = threadIdx.x, r0 = tid / kLanes, c = 8 * (tid % kLanes);
  const T* base = slice_base<T>(v, bh);
  float inv[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) inv[i] = v_inv[bh * kDp + c + i];
#pragma unroll
  for (int p = 0; p < kTile / kRows; ++p) {
    const int r = r0 + p * kRows;
    const int tok = tile_begin + r;
    float x[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    if (v_row_valid(v, keys, bh, tok, end)) load_chunk<T>(v, base, tok, c, x);
    uint32_t lo = 0, hi = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      lo |= static_cast<uint32_t>(float_to_e4m3(x[i] * inv[i])) << (8 * i);
      hi |= static_cast<uint32_t>(float_to_e4m3(x[i + 4] * inv[i + 4])) << (8 * i);
    }
    *reinterpret_cast<uint32_t*>(&tile[r][c]) = lo;
    *reinterpret_cast<uint32_t*>(&tile[r][c + 4]) = hi;
  }
  __syncthreads();
  // Each thread writes 4 consecutive logical tokens of one channel row: 16 words per 64-token row.
  uint8_t* out = dst + bh * kDp * static_cast<int64_t>(len_pad) + tile_begin;
#pragma unroll
  for (int w = tid; w < kDp * (kTile / 4); w += kThreads) {
    const int ch = w / (kTile / 4), slot0 = (w % (kTile / 4)) * 4;
    uint32_t packed = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int slot = slot0 + i;
      const int tok = (slot & ~15) + fp8_token_of_slot(slot & 15);
      packed |= static_cast<uint32_t>(tile[tok][ch]) << (8 * i);
    }
    *reinterpret_cast<uint32_t*>(out + static_cast<int64_t>(ch) * len_pad + slot0) = packed;
  }
}

struct ConvertF16Launch {
  const TokenView& v;
  int len_pad;
  const KeyValidity& keys;
  void* dst;
  cudaStream_t stream;
  template <typename T, int kDp>
  cudaError_t run() const {
    const dim3 grid(v.batch * v.heads, len_pad / kTile);
    convert_v_f16_kernel<T, kDp><<<grid, kThreads, 0, stream>>>(v, len_pad, keys, static_cast<__half*>(dst));
    return cudaGetLastError();
  }
};

struct QuantizeFp8Launch {
  const TokenView& v;
  int len_pad;
  const KeyValidity& keys;
  const float* v_inv;
  uint8_t* dst;
  cudaStream_t stream;
  template <typename T, int kDp>
  cudaError_t run() const {
    const dim3 grid(v.batch * v.heads, len_pad / kTile);
    quantize_v_fp8_kernel<T, kDp><<<grid, kThreads, 0, stream>>>(v, len_pad, keys, v_inv, dst);
    return cudaGetLastError();
  }
};

}  // namespace

cudaError_t launch_convert_v_f16(const TokenView& v, int head_dim_pad, int len_pad, const KeyValidity& keys,
                                 void* dst, cudaStream_t stream) {
  return with_type_and_dim(v.dtype, head_dim_pad, ConvertF16Launch{v, len_pad, keys, dst, stream});
}

cudaError_t launch_quantize_v_fp8(const TokenView& v, int head_dim_pad, int len_pad, const KeyValidity& keys,
                                  const float* v_inv, uint8_t* dst, cudaStream_t stream) {
  return with_type_and_dim(v.dtype, head_dim_pad, QuantizeFp8Launch{v, len_pad, keys, v_inv, dst, stream});
}

}  // namespace sage::cuda
