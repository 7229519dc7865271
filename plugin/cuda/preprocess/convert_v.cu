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

constexpr int kTile = kBlockK;  // 64 tokens per CTA
constexpr int kRowsPerWarp = kTile / kPrepWarps;

template <typename T>
__global__ void __launch_bounds__(kPrepThreads)
    convert_v_f16_kernel(const TokenView v, int head_dim_pad, int len_pad, __half* dst) {
  const int64_t bh = blockIdx.x;
  const int tile_begin = blockIdx.y * kTile;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, c = 4 * lane;
  if (c >= head_dim_pad) return;
  const T* base = slice_base<T>(v, bh);
#pragma unroll
  for (int k = 0; k < kRowsPerWarp; ++k) {
    const int tok = tile_begin + warp + kPrepWarps * k;
    float x[4] = {0.f, 0.f, 0.f, 0.f};
    if (tok < v.len) load_row4<T>(v, base, tok, lane, x);
    const __half2 lo = __floats2half2_rn(x[0], x[1]), hi = __floats2half2_rn(x[2], x[3]);
    uint2 packed;
    packed.x = *reinterpret_cast<const uint32_t*>(&lo);
    packed.y = *reinterpret_cast<const uint32_t*>(&hi);
    *reinterpret_cast<uint2*>(dst + (bh * len_pad + tok) * head_dim_pad + c) = packed;
  }
}

// Physical token (within a 16-group) stored at logical position l: the FP8 P~ fragment of lane t holds keys
// 2t, 2t+1, 8+2t, 9+2t at MMA k positions 4t..4t+3.
__device__ __forceinline__ int fp8_token_of_slot(int l) { return 2 * (l >> 2) + (l & 1) + ((l & 2) ? 8 : 0); }

template <typename T>
__global__ void __launch_bounds__(kPrepThreads)
    quantize_v_fp8_kernel(const TokenView v, int head_dim_pad, int len_pad, const float* v_inv, uint8_t* dst) {
  constexpr int kPitch = 128 + 4;  // bytes per token row in smem; the pad spreads the column reads over banks
  __shared__ __align__(16) uint8_t tile[kTile][kPitch];
  const int64_t bh = blockIdx.x;
  const int tile_begin = blockIdx.y * kTile;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, c = 4 * lane;
  const T* base = slice_base<T>(v, bh);
  float inv[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) inv[i] = c + i < head_dim_pad ? v_inv[bh * head_dim_pad + c + i] : 0.f;
#pragma unroll
  for (int k = 0; k < kRowsPerWarp; ++k) {
    const int r = warp + kPrepWarps * k;
    const int tok = tile_begin + r;
    float x[4] = {0.f, 0.f, 0.f, 0.f};
    if (tok < v.len) load_row4<T>(v, base, tok, lane, x);
    uint32_t packed = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) packed |= static_cast<uint32_t>(float_to_e4m3(x[i] * inv[i])) << (8 * i);
    *reinterpret_cast<uint32_t*>(&tile[r][c]) = packed;
  }
  __syncthreads();
  // Each thread writes 4 consecutive logical tokens of one channel row: 16 words per 64-token row.
  uint8_t* out = dst + bh * head_dim_pad * static_cast<int64_t>(len_pad) + tile_begin;
  for (int w = tid; w < head_dim_pad * (kTile / 4); w += kPrepThreads) {
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
  int head_dim_pad, len_pad;
  void* dst;
  cudaStream_t stream;
  template <typename T>
  cudaError_t run() const {
    const dim3 grid(v.batch * v.heads, len_pad / kTile);
    convert_v_f16_kernel<T><<<grid, kPrepThreads, 0, stream>>>(v, head_dim_pad, len_pad, static_cast<__half*>(dst));
    return cudaGetLastError();
  }
};

struct QuantizeFp8Launch {
  const TokenView& v;
  int head_dim_pad, len_pad;
  const float* v_inv;
  uint8_t* dst;
  cudaStream_t stream;
  template <typename T>
  cudaError_t run() const {
    const dim3 grid(v.batch * v.heads, len_pad / kTile);
    quantize_v_fp8_kernel<T><<<grid, kPrepThreads, 0, stream>>>(v, head_dim_pad, len_pad, v_inv, dst);
    return cudaGetLastError();
  }
};

}  // namespace

cudaError_t launch_convert_v_f16(const TokenView& v, int head_dim_pad, int len_pad, void* dst, cudaStream_t stream) {
  return with_cuda_type(v.dtype, ConvertF16Launch{v, head_dim_pad, len_pad, dst, stream});
}

cudaError_t launch_quantize_v_fp8(const TokenView& v, int head_dim_pad, int len_pad, const float* v_inv,
                                  uint8_t* dst, cudaStream_t stream) {
  return with_cuda_type(v.dtype, QuantizeFp8Launch{v, head_dim_pad, len_pad, v_inv, dst, stream});
}

}  // namespace sage::cuda
