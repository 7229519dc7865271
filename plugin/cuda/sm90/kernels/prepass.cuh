// Quantization passes of the sm_90a path (two launches before the attention kernel):
//
//   pass 1 (one launch, two CTA roles):
//     Q CTAs    : 128 query tokens each; per-group amax -> int8 codes (row-major, padded to Dp) and scales
//                 deltaQ * sigma * log2(e) (the softmax scale and the base change folded in);
//     stats CTAs: a chunk of one kv head's tokens; per-channel partial sums of K (for smooth_k) and
//                 partial amax of |V| -> workspace.
//   pass 2 (kv CTAs, 128 keys each): reduce the partials of their head (k-bar, deltaV), then
//     K - k-bar -> int8 codes and deltaK; V -> e4m3 codes transposed to V^T [Dp][Skv16] with the tokens of
//     every 16-group permuted (0,1,8,9,2,3,10,11,4,5,12,13,6,7,14,15) so that the P~ registers of the
//     Q.K^T accumulator are already the A operand of the P~.V wgmma (softmax.cuh).
//
// Every rounding is the contract's (docs/OP_CONTRACT.md §3, §6): IEEE divisions and products, round half
// away from zero for the integers, __nv_cvt_float_to_fp8(satfinite, e4m3) for V. Group membership comes
// from sage/quant_groups.h, shared with the CPU kernel.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "kernel_params.h"
#include "quant_groups.h"

namespace sage::sm90 {

inline constexpr int kPrepassThreads = 128;
inline constexpr int kPrepassTokens = 128;  // tokens per Q or kv CTA (one per thread)
inline constexpr int kStatSlots = 8;        // rows read in parallel by a stats CTA (16 threads per row)

template <typename T>
__device__ __forceinline__ float to_f32(T x);
template <>
__device__ __forceinline__ float to_f32<float>(float x) { return x; }
template <>
__device__ __forceinline__ float to_f32<__half>(__half x) { return __half2float(x); }
template <>
__device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }

// kN consecutive channels starting at c0 (channels >= d read as 0). `vec`: the row start is 16-byte
// aligned (pointer and every stride), so a span wholly below d whose byte offset is a multiple of its
// size can be read with one or two wide loads.
template <typename T, int kN>
__device__ __forceinline__ void load_span(const T* row, int c0, int d, bool vec, float (&x)[kN]) {
  constexpr int kBytes = kN * static_cast<int>(sizeof(T));
  if (vec && c0 + kN <= d && (kBytes % 16 == 0 || kBytes == 8)) {
    if constexpr (kBytes % 16 == 0) {
#pragma unroll
      for (int v = 0; v < kBytes / 16; ++v) {
        const uint4 u = __ldg(reinterpret_cast<const uint4*>(row + c0) + v);
        const T* e = reinterpret_cast<const T*>(&u);
#pragma unroll
        for (int i = 0; i < 16 / static_cast<int>(sizeof(T)); ++i) x[v * (16 / sizeof(T)) + i] = to_f32(e[i]);
      }
    } else if constexpr (kBytes == 8) {
      const uint2 u = __ldg(reinterpret_cast<const uint2*>(row + c0));
      const T* e = reinterpret_cast<const T*>(&u);
#pragma unroll
      for (int i = 0; i < kN; ++i) x[i] = to_f32(e[i]);
    }
    return;
  }
#pragma unroll
  for (int i = 0; i < kN; ++i) x[i] = c0 + i < d ? to_f32(row[c0 + i]) : 0.f;
}

// A whole row of kHD channels, in 16-byte pieces so that a D below kHD still uses wide loads.
template <typename T, int kHD>
__device__ __forceinline__ void load_row(const T* row, int d, bool vec, float (&x)[kHD]) {
  constexpr int kV = 16 / static_cast<int>(sizeof(T));
#pragma unroll
  for (int c0 = 0; c0 < kHD; c0 += kV) {
    float piece[kV];
    load_span<T, kV>(row, c0, d, vec, piece);
#pragma unroll
    for (int i = 0; i < kV; ++i) x[c0 + i] = piece[i];
  }
}

// int8 code of the contract: clamp(round_half_away(x * inv), -qmax, qmax).
__device__ __forceinline__ uint32_t int_code(float x, float inv, float qmax) {
  const float c = fminf(fmaxf(roundf(x * inv), -qmax), qmax);
  return static_cast<uint32_t>(static_cast<int32_t>(c)) & 0xFFu;
}

template <int kHD>
__device__ __forceinline__ void store_codes(int8_t* dst, const float (&x)[kHD], float inv, float qmax) {
#pragma unroll
  for (int c0 = 0; c0 < kHD; c0 += 16) {
    uint32_t w[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int c = c0 + 4 * k;
      w[k] = int_code(x[c], inv, qmax) | (int_code(x[c + 1], inv, qmax) << 8) | (int_code(x[c + 2], inv, qmax) << 16) |
             (int_code(x[c + 3], inv, qmax) << 24);
    }
    *reinterpret_cast<uint4*>(dst + c0) = make_uint4(w[0], w[1], w[2], w[3]);
  }
}

__device__ __forceinline__ float warp_max(float x, int from_mask) {
  // xor-reduce over the lane bits in from_mask (e.g. 8|16 reduces over lanes l, l^8, l^16, l^24)
#pragma unroll
  for (int b = 1; b < 32; b <<= 1) {
    if (from_mask & b) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, b));
  }
  return x;
}

// ---- pass 1, role Q: one CTA = 128 tokens of one (batch, q head) -------------------------------------
template <typename T, int kHD>
__device__ __forceinline__ void quantize_q_tile(const PrepassParams& p, int blk) {
  __shared__ float s_warp_amax[kPrepassThreads / 32];
  const int q_tiles = (p.q_len + kPrepassTokens - 1) / kPrepassTokens;
  const int bh = blk / q_tiles;
  const int tile = blk % q_tiles;
  const int b = bh / p.q_heads;
  const int h = bh % p.q_heads;
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int i = tile * kPrepassTokens + tid;
  const bool valid = i < p.q_len;
  const auto gran = static_cast<schema::QkGranularity>(p.granularity);

  float x[kHD];
  if (valid) {
    const T* row = static_cast<const T*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride + i * p.q_token_stride;
    load_row<T, kHD>(row, p.head_dim, p.vec_q != 0, x);
  } else {
#pragma unroll
    for (int c = 0; c < kHD; ++c) x[c] = 0.f;
  }
  float amax = 0.f;
#pragma unroll
  for (int c = 0; c < kHD; ++c) amax = fmaxf(amax, fabsf(x[c]));

  // A warp holds one 32-token slice (the CTA starts on a multiple of 128).
  if (gran == schema::QkGranularity::kPerThread) {
    amax = warp_max(amax, 8 | 16);  // tokens i, i+8, i+16, i+24
  } else {
    amax = warp_max(amax, 31);
    if (gran == schema::QkGranularity::kPerBlock) {
      if (lane == 0) s_warp_amax[tid >> 5] = amax;
      __syncthreads();
      amax = fmaxf(fmaxf(s_warp_amax[0], s_warp_amax[1]), fmaxf(s_warp_amax[2], s_warp_amax[3]));
    }
  }
  const float qmax = static_cast<float>(p.qmax);
  const float inv = amax > 0.f ? qmax / amax : 0.f;
  if (valid) store_codes<kHD>(p.q8 + (static_cast<int64_t>(bh) * p.q_len + i) * kHD, x, inv, qmax);

  const bool leader = gran == schema::QkGranularity::kPerThread ? lane < 8
                      : gran == schema::QkGranularity::kPerWarp ? lane == 0
                                                                 : tid == 0;
  if (leader) {
    const int64_t slot = q_group_of(i, gran);
    if (slot < p.q_groups) p.q_scale[static_cast<int64_t>(bh) * p.q_groups + slot] = (amax / qmax) * p.q_fold;
  }
}

// ---- pass 1, role stats: per-channel partial K sums and V amax of one chunk of one kv head -------------
template <typename T, int kHD>
__device__ __forceinline__ void kv_stats_chunk(const PrepassParams& p, int blk) {
  constexpr int kLanesPerRow = kPrepassThreads / kStatSlots;  // 16
  constexpr int kCh = kHD / kLanesPerRow;                     // channels per thread
  __shared__ float s_ksum[kStatSlots][kHD];
  __shared__ float s_vmax[kStatSlots][kHD];
  const int bhk = blk / p.stat_chunks;
  const int chunk = blk % p.stat_chunks;
  const int b = bhk / p.kv_heads;
  const int g = bhk % p.kv_heads;
  const int slot = threadIdx.x / kLanesPerRow;
  const int c0 = (threadIdx.x % kLanesPerRow) * kCh;
  const int j0 = chunk * p.stat_chunk_len;
  const int j1 = min(p.kv_len, j0 + p.stat_chunk_len);
  const T* kbase = static_cast<const T*>(p.k) + b * p.k_batch_stride + g * p.k_head_stride;
  const T* vbase = static_cast<const T*>(p.v) + b * p.v_batch_stride + g * p.v_head_stride;

  float ks[kCh], vm[kCh];
#pragma unroll
  for (int c = 0; c < kCh; ++c) ks[c] = vm[c] = 0.f;
  for (int j = j0 + slot; j < j1; j += kStatSlots) {
    float kx[kCh], vx[kCh];
    load_span<T, kCh>(kbase + j * p.k_token_stride, c0, p.head_dim, p.vec_k != 0, kx);
    load_span<T, kCh>(vbase + j * p.v_token_stride, c0, p.head_dim, p.vec_v != 0, vx);
#pragma unroll
    for (int c = 0; c < kCh; ++c) {
      ks[c] += kx[c];
      vm[c] = fmaxf(vm[c], fabsf(vx[c]));
    }
  }
#pragma unroll
  for (int c = 0; c < kCh; ++c) {
    s_ksum[slot][c0 + c] = ks[c];
    s_vmax[slot][c0 + c] = vm[c];
  }
  __syncthreads();
  if (threadIdx.x < kHD) {
    const int c = threadIdx.x;
    float sum = 0.f, mx = 0.f;
#pragma unroll
    for (int s = 0; s < kStatSlots; ++s) {
      sum += s_ksum[s][c];
      mx = fmaxf(mx, s_vmax[s][c]);
    }
    const int64_t at = (static_cast<int64_t>(bhk) * p.stat_chunks + chunk) * kHD + c;
    p.part_ksum[at] = sum;
    p.part_vmax[at] = mx;
  }
}

template <typename T, int kHD>
__global__ void __launch_bounds__(kPrepassThreads) sm90_prepass_q_stats_kernel(const PrepassParams p) {
  if (static_cast<int>(blockIdx.x) < p.q_blocks) {
    quantize_q_tile<T, kHD>(p, blockIdx.x);
  } else {
    kv_stats_chunk<T, kHD>(p, blockIdx.x - p.q_blocks);
  }
}

// Storage position of key k (0..15) inside its 16-group of V^T: the A-fragment of an m64k32 wgmma holds
// keys {2t, 2t+1, 8+2t, 9+2t} at k = 4t..4t+3 (softmax.cuh), so key k goes to 4*((k%8)/2) + (k&1) + 2*(k/8).
__device__ __forceinline__ int v_position_in_group(int k) { return 4 * ((k & 7) >> 1) + (k & 1) + 2 * (k >> 3); }

// ---- pass 2: K codes and V^T codes of 128 keys of one kv head ---------------------------------------
template <typename T, int kHD>
__global__ void __launch_bounds__(kPrepassThreads) sm90_prepass_kv_kernel(const PrepassParams p) {
  constexpr int kVtPitch = kPrepassTokens + 16;  // keeps 16-byte rows aligned for the read-out
  __shared__ float s_mean[kHD];
  __shared__ float s_vinv[kHD];
  __shared__ float s_group_amax[kPrepassThreads / 32][4];
  __shared__ __align__(16) uint8_t s_vt[kHD][kVtPitch];

  const int bhk = blockIdx.x / p.kv_tiles;
  const int tile = blockIdx.x % p.kv_tiles;
  const int b = bhk / p.kv_heads;
  const int g = bhk % p.kv_heads;
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const auto gran = static_cast<schema::QkGranularity>(p.granularity);

  if (tid < kHD) {
    float sum = 0.f, vmax = 0.f;
    for (int ch = 0; ch < p.stat_chunks; ++ch) {
      const int64_t at = (static_cast<int64_t>(bhk) * p.stat_chunks + ch) * kHD + tid;
      sum += p.part_ksum[at];
      vmax = fmaxf(vmax, p.part_vmax[at]);
    }
    s_mean[tid] = p.smooth_k ? sum / static_cast<float>(p.kv_len) : 0.f;
    s_vinv[tid] = vmax > 0.f ? p.v_range / vmax : 0.f;
    if (tile == 0) p.v_scale[static_cast<int64_t>(bhk) * kHD + tid] = vmax > 0.f ? vmax / p.v_range : 0.f;
  }
  __syncthreads();

  const int j = tile * kPrepassTokens + tid;
  const bool valid = j < p.kv_len;

  // K: smooth, group amax, codes.
  float x[kHD];
  if (valid) {
    const T* row = static_cast<const T*>(p.k) + b * p.k_batch_stride + g * p.k_head_stride + j * p.k_token_stride;
    load_row<T, kHD>(row, p.head_dim, p.vec_k != 0, x);
#pragma unroll
    for (int c = 0; c < kHD; ++c) x[c] -= s_mean[c];  // padded channels: 0 - 0
  } else {
#pragma unroll
    for (int c = 0; c < kHD; ++c) x[c] = 0.f;
  }
  float amax = 0.f;
#pragma unroll
  for (int c = 0; c < kHD; ++c) amax = fmaxf(amax, fabsf(x[c]));
  // A 64-key contract block spans warps 2w' and 2w'+1 of the CTA.
  if (gran == schema::QkGranularity::kPerThread) {
    amax = warp_max(amax, 1 | 8 | 16);  // keys with equal (j % 8) / 2 inside the warp
    if (lane < 8 && (lane & 1) == 0) s_group_amax[warp][lane >> 1] = amax;
  } else {
    amax = warp_max(amax, 31);
    if (lane == 0) s_group_amax[warp][0] = amax;
  }
  __syncthreads();
  {
    const int gi = gran == schema::QkGranularity::kPerThread ? (lane & 7) >> 1 : 0;
    amax = fmaxf(s_group_amax[warp][gi], s_group_amax[warp ^ 1][gi]);
  }
  const float qmax = static_cast<float>(p.qmax);
  const float inv = amax > 0.f ? qmax / amax : 0.f;
  if (valid) store_codes<kHD>(p.k8 + (static_cast<int64_t>(bhk) * p.kv_len + j) * kHD, x, inv, qmax);
  const bool leader = (warp & 1) == 0 &&
                      (gran == schema::QkGranularity::kPerThread ? (lane < 8 && (lane & 1) == 0) : lane == 0);
  if (leader) {
    const int64_t slot = k_group_of(j, gran);
    if (slot < p.k_groups) p.k_scale[static_cast<int64_t>(bhk) * p.k_groups + slot] = amax / qmax;
  }

  // V: per-channel e4m3 codes, transposed and permuted through shared memory.
  if (valid) {
    const T* row = static_cast<const T*>(p.v) + b * p.v_batch_stride + g * p.v_head_stride + j * p.v_token_stride;
    load_row<T, kHD>(row, p.head_dim, p.vec_v != 0, x);
  } else {
#pragma unroll
    for (int c = 0; c < kHD; ++c) x[c] = 0.f;
  }
  const int pos = (tid & ~15) + v_position_in_group(tid & 15);
#pragma unroll
  for (int c = 0; c < kHD; ++c) {
    s_vt[c][pos] = static_cast<uint8_t>(__nv_cvt_float_to_fp8(x[c] * s_vinv[c], __NV_SATFINITE, __NV_E4M3));
  }
  __syncthreads();
  for (int idx = tid; idx < kHD * (kPrepassTokens / 16); idx += kPrepassThreads) {
    const int c = idx / (kPrepassTokens / 16);
    const int grp = idx % (kPrepassTokens / 16);
    const int col = tile * kPrepassTokens + 16 * grp;
    if (col < p.kv_len16) {
      *reinterpret_cast<uint4*>(p.v8t + (static_cast<int64_t>(bhk) * kHD + c) * p.kv_len16 + col) =
          *reinterpret_cast<const uint4*>(&s_vt[c][16 * grp]);
    }
  }
}

}  // namespace sage::sm90
