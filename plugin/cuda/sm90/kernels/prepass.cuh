// Quantization of the sm_90a path (two launches before the attention kernel, or one for short sequences):
//
//   pass 1 (one launch, two CTA roles):
//     Q CTAs    : 128 query tokens each; per-group amax -> int8 codes (row-major, padded to Dp) and scales
//                 deltaQ * sigma * log2(e) (the softmax scale and the base change folded in);
//     stats CTAs: a chunk of one kv head's tokens; per-channel partial sums of K (for smooth_k) and
//                 partial amax of |V| -> workspace.
//   pass 2 (a K CTA and a V CTA per 128 keys): reduce the partials of their head (k-bar or deltaV), then
//     K - k-bar -> int8 codes and deltaK, or V -> e4m3 codes transposed to V^T [Dp][Skv16] with the tokens of
//     every 16-group permuted (0,1,8,9,2,3,10,11,4,5,12,13,6,7,14,15) so that the P~ registers of the
//     Q.K^T accumulator are already the A operand of the P~.V wgmma (softmax.cuh).
//   or, for kv_len <= 2048 without key masks, one launch (sm90_prepass_clustered_kernel): pass 1's Q CTAs, then the
//     K (V) CTAs of each kv head as one thread block cluster whose CTAs reduce k-bar (deltaV) from the rows they hold
//     through distributed shared memory (reduce_in_cluster) before quantizing them as pass 2 does: K and V are read
//     once and no partials go through global memory.
//
// kKeys (key_lengths and/or a bool key-padding mask, docs/OP_CONTRACT.md "Masks"; the *_keys_kernel entries,
// which take the KeyValidity as a second argument): the K/V passes see only the batch's valid keys. Invalid keys are left out of the K sums and the V amax (k-bar
// divides by the valid-key count, 0 when there is none), are quantized as zero K rows outside the group amax
// and zero V codes, and nothing at or past the batch's end (last valid key + 1) is read. 128-key tiles that
// start at or past the end are skipped (the attention kernel never loads them), except tile 0, which writes
// deltaV. Every tile the attention kernel may load is written whole, so its K and V^T codes are finite.
//
// Every rounding is the contract's (docs/OP_CONTRACT.md §3, §6): IEEE divisions and products, round half
// away from zero for the integers, __nv_cvt_float_to_fp8(satfinite, e4m3) for V. Group membership comes
// from sage/quant_groups.h, shared with the CPU kernel.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "../../common/key_validity.h"
#include "../device/ptx_sm90.cuh"
#include "kernel_params.h"
#include "quant_groups.h"

namespace sage::sm90 {

// Both passes run eight warps per CTA; a Q or K/V CTA covers 128 tokens, 16 per warp. Their code is unrolled over
// each thread's rows: with 32 tokens per warp (four warps) pass 2 was 86 KB of straight-line code that every CTA
// streams once, and instruction-fetch stalls took 44% of its warps' samples.
inline constexpr int kPrepassThreads = 256;
inline constexpr int kPrepassTokens = 128;  // tokens per Q or kv CTA
inline constexpr int kWarpTokens = kPrepassTokens / (kPrepassThreads / 32);
inline constexpr int kStatSlots = kPrepassThreads / 16;  // rows read in parallel by a stats CTA (16 threads per row)

template <typename T>
__device__ __forceinline__ float to_f32(T x);
template <>
__device__ __forceinline__ float to_f32<float>(float x) { return x; }
template <>
__device__ __forceinline__ float to_f32<__half>(__half x) { return __half2float(x); }
template <>
__device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }

__device__ __forceinline__ uint32_t bits_of(float x) { return __float_as_uint(x); }
__device__ __forceinline__ uint32_t bits_of(__half x) { return __half_as_ushort(x); }
__device__ __forceinline__ uint32_t bits_of(__nv_bfloat16 x) { return __bfloat16_as_ushort(x); }
template <typename T>
__device__ __forceinline__ float from_bits(uint32_t w);
template <>
__device__ __forceinline__ float from_bits<float>(uint32_t w) { return __uint_as_float(w); }
template <>
__device__ __forceinline__ float from_bits<__half>(uint32_t w) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(w & 0xFFFFu)));
}
template <>
__device__ __forceinline__ float from_bits<__nv_bfloat16>(uint32_t w) { return __uint_as_float(w << 16); }

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

// int8 code of the contract: clamp(round_half_away(x * inv), -qmax, qmax).
__device__ __forceinline__ uint32_t int_code(float x, float inv, float qmax) {
  const float c = fminf(fmaxf(roundf(x * inv), -qmax), qmax);
  return static_cast<uint32_t>(static_cast<int32_t>(c)) & 0xFFu;
}

// ---- warp-cooperative row tiles ----------------------------------------------------------------------
// A warp owns kWarpTokens consecutive tokens; each row is read by kLanes lanes with one 16-byte load each (a
// coalesced row segment), kRows rows per step, kSteps steps. The raw 16-byte pieces stay in registers
// between the amax and the quantization, so each input byte is read from memory once.
template <typename T, int kHD, int kWarpTokens = 32>
struct RowTile {
  static constexpr int kVec = 16 / static_cast<int>(sizeof(T));  // channels per lane
  static constexpr int kLanes = kHD / kVec;                       // lanes per row
  static constexpr int kRows = 32 / kLanes;                       // rows per step
  static constexpr int kSteps = kWarpTokens / kRows;
  static_assert(kLanes <= 32 && 32 % kLanes == 0, "a row spans a power-of-two lane group");
  static_assert(kSteps <= 32, "one bit per step in a row mask");

  uint4 raw[kSteps];

  __device__ __forceinline__ static int row_of(int step, int lane) { return step * kRows + lane / kLanes; }
  __device__ __forceinline__ static int chan_of(int lane) { return (lane % kLanes) * kVec; }

  // base: the warp's first token row; rows >= valid_rows, rows of steps whose bit in row_ok is clear (invalid
  // keys: not read) and channels >= d read as 0.
  __device__ __forceinline__ void load(const T* base, int64_t token_stride, int valid_rows, int d, bool vec, int lane,
                                       uint32_t row_ok = ~0u) {
    const int c0 = chan_of(lane);
#pragma unroll
    for (int st = 0; st < kSteps; ++st) {
      const int r = row_of(st, lane);
      raw[st] = make_uint4(0, 0, 0, 0);
      if (r < valid_rows && ((row_ok >> st) & 1u)) {
        const T* src = base + r * token_stride + c0;
        if (vec && c0 + kVec <= d) {
          raw[st] = __ldg(reinterpret_cast<const uint4*>(src));
        } else {
          uint32_t w[4] = {0, 0, 0, 0};
#pragma unroll
          for (int i = 0; i < kVec; ++i) {
            if (c0 + i < d) w[i * sizeof(T) / 4] |= bits_of(src[i]) << (8 * ((i * sizeof(T)) % 4));
          }
          raw[st] = make_uint4(w[0], w[1], w[2], w[3]);
        }
      }
    }
  }

  __device__ __forceinline__ float value(int st, int i) const {
    const int byte = i * static_cast<int>(sizeof(T));
    const uint4& u = raw[st];
    const uint32_t word = byte < 4 ? u.x : byte < 8 ? u.y : byte < 12 ? u.z : u.w;
    return from_bits<T>(word >> (8 * (byte % 4)));
  }
};

// Max over the kLanes lanes that share a row (lanes are grouped contiguously).
template <int kLanes>
__device__ __forceinline__ float row_group_max(float x) {
#pragma unroll
  for (int b = 1; b < kLanes; b <<= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, b));
  return x;
}

// kVec int8 codes of the contract for one lane's channels, packed little-endian.
template <int kVec>
__device__ __forceinline__ void store_code_piece(int8_t* dst, const float (&x)[kVec], float inv, float qmax) {
  uint32_t w[(kVec + 3) / 4];
#pragma unroll
  for (int k = 0; k < (kVec + 3) / 4; ++k) {
    w[k] = int_code(x[4 * k], inv, qmax) | (int_code(x[4 * k + 1], inv, qmax) << 8) |
           (int_code(x[4 * k + 2], inv, qmax) << 16) | (int_code(x[4 * k + 3], inv, qmax) << 24);
  }
  if constexpr (kVec == 8) {
    *reinterpret_cast<uint2*>(dst) = make_uint2(w[0], w[1]);
  } else {
    *reinterpret_cast<uint32_t*>(dst) = w[0];
  }
}

// ---- pass 1, role Q: one CTA = 128 tokens of one (batch, q head) -------------------------------------
template <typename T, int kHD>
__device__ __forceinline__ void quantize_q_tile(const PrepassParams& p, int blk) {
  using Tile = RowTile<T, kHD, kWarpTokens>;
  __shared__ float s_row[kPrepassTokens];
  __shared__ float s_grp[kPrepassTokens / 32 * 8];
  const int q_tiles = (p.q_len + kPrepassTokens - 1) / kPrepassTokens;
  const int bh = blk / q_tiles;
  const int tile = blk % q_tiles;
  const int b = bh / p.q_heads;
  const int h = bh % p.q_heads;
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int first = tile * kPrepassTokens + kWarpTokens * warp;  // the warp's first token
  const int slice = warp / (32 / kWarpTokens);                     // the warp's 32-token slice (quant_groups.h)
  const auto gran = static_cast<schema::QkGranularity>(p.granularity);

  Tile rows;
  const T* base = static_cast<const T*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride + first * p.q_token_stride;
  rows.load(base, p.q_token_stride, p.q_len - first, p.head_dim, p.vec_q != 0, lane);
#pragma unroll
  for (int st = 0; st < Tile::kSteps; ++st) {
    float m = 0.f;
#pragma unroll
    for (int i = 0; i < Tile::kVec; ++i) m = fmaxf(m, fabsf(rows.value(st, i)));
    m = row_group_max<Tile::kLanes>(m);
    if (lane % Tile::kLanes == 0) s_row[kWarpTokens * warp + Tile::row_of(st, lane)] = m;
  }
  __syncthreads();
  // Group maxima: per_thread 8 groups per 32-token slice (tokens g, g+8, g+16, g+24), per_warp one per
  // slice, per_block one per CTA. Their leaders also write the scales.
  {
    float m = -1.f;  // -1: this thread leads no group
    int leader_row = 0;
    if (gran == schema::QkGranularity::kPerThread) {
      if (tid < 32) {
        const int slice = tid / 8, g = tid % 8;
        m = fmaxf(fmaxf(s_row[32 * slice + g], s_row[32 * slice + g + 8]),
                  fmaxf(s_row[32 * slice + g + 16], s_row[32 * slice + g + 24]));
        leader_row = 32 * slice + g;
        s_grp[tid] = m;
      }
    } else if (warp < kPrepassTokens / 32) {  // warp w leads slice w
      const bool block = gran == schema::QkGranularity::kPerBlock;
      float x = block ? fmaxf(fmaxf(s_row[lane], s_row[lane + 32]), fmaxf(s_row[lane + 64], s_row[lane + 96]))
                      : s_row[32 * warp + lane];
      x = row_group_max<32>(x);
      if (lane == 0 && (!block || warp == 0)) {
        m = x;
        leader_row = block ? 0 : 32 * warp;
        s_grp[block ? 0 : warp] = m;
      }
    }
    if (m >= 0.f) {
      const int64_t slot = q_group_of(tile * kPrepassTokens + leader_row, gran);
      if (slot < p.q_groups) {
        p.q_scale[static_cast<int64_t>(bh) * p.q_groups + slot] = (m / static_cast<float>(p.qmax)) * p.q_fold;
      }
    }
  }
  __syncthreads();
  const float qmax = static_cast<float>(p.qmax);
  const int c0 = Tile::chan_of(lane);
#pragma unroll
  for (int st = 0; st < Tile::kSteps; ++st) {
    const int r = Tile::row_of(st, lane);
    if (first + r >= p.q_len) continue;
    // (kWarpTokens is a multiple of 8: a token's index in its slice is r modulo 8.)
    const int grp = gran == schema::QkGranularity::kPerThread ? 8 * slice + (r % 8)
                    : gran == schema::QkGranularity::kPerWarp ? slice
                                                               : 0;
    const float amax = s_grp[grp];
    const float inv = amax > 0.f ? qmax / amax : 0.f;
    float x[Tile::kVec];
#pragma unroll
    for (int i = 0; i < Tile::kVec; ++i) x[i] = rows.value(st, i);
    store_code_piece<Tile::kVec>(p.q8 + (static_cast<int64_t>(bh) * p.q_len + first + r) * kHD + c0, x, inv, qmax);
  }
}

// ---- pass 1, role stats: per-channel partial K sums and V amax of one chunk of one kv head -------------
template <typename T, int kHD, bool kKeys>
__device__ __forceinline__ void kv_stats_chunk(const PrepassParams& p, const cuda::KeyValidity& keys, int blk) {
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
  int j1 = min(p.kv_len, j0 + p.stat_chunk_len);
  if constexpr (kKeys) j1 = min(j1, keys.end(b));  // nothing at or past the batch's last valid key is read
  const T* kbase = static_cast<const T*>(p.k) + b * p.k_batch_stride + g * p.k_head_stride;
  const T* vbase = static_cast<const T*>(p.v) + b * p.v_batch_stride + g * p.v_head_stride;

  float ks[kCh], vm[kCh];
#pragma unroll
  for (int c = 0; c < kCh; ++c) ks[c] = vm[c] = 0.f;
  // Unrolled so that several rows' loads are in flight per thread (the loop carries only the accumulators).
#pragma unroll 4
  for (int j = j0 + slot; j < j1; j += kStatSlots) {
    if constexpr (kKeys) {
      if (keys.bits != nullptr && !keys.valid(b, j)) continue;  // a hole of the key-padding mask
    }
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

template <typename T, int kHD, bool kKeys>
__device__ __forceinline__ void q_stats_cta(const PrepassParams& p, const cuda::KeyValidity& keys) {
  griddep_launch_dependents();  // pass 2's CTAs may take the SMs this grid leaves (they wait for its results)
  if (static_cast<int>(blockIdx.x) < p.q_blocks) {
    quantize_q_tile<T, kHD>(p, blockIdx.x);
  } else {
    kv_stats_chunk<T, kHD, kKeys>(p, keys, blockIdx.x - p.q_blocks);
  }
}

template <typename T, int kHD>
__global__ void __launch_bounds__(kPrepassThreads) sm90_prepass_q_stats_kernel(const PrepassParams p) {
  q_stats_cta<T, kHD, false>(p, cuda::KeyValidity{});
}

// key_lengths / key-padding mask: the stats CTAs see only the valid keys.
template <typename T, int kHD>
__global__ void __launch_bounds__(kPrepassThreads)
    sm90_prepass_q_stats_keys_kernel(const PrepassParams p, const cuda::KeyValidity keys) {
  q_stats_cta<T, kHD, true>(p, keys);
}

// Storage position of key k (0..15) inside its 16-group of V^T: the A-fragment of an m64k32 wgmma holds
// keys {2t, 2t+1, 8+2t, 9+2t} at k = 4t..4t+3 (softmax.cuh), so key k goes to 4*((k%8)/2) + (k&1) + 2*(k/8).
__device__ __forceinline__ int v_position_in_group(int k) { return 4 * ((k & 7) >> 1) + (k & 1) + 2 * (k >> 3); }

// ---- a kv head's statistics from its partials ---------------------------------------------------------
// Channel c's sum of K (is_v false) or max |V| over the head's stat_chunks partials, eight per round trip (a loop
// that waits for each L2 load in turn would put several of them behind a pass-2 tile's own loads).
template <int kHD>
__device__ __forceinline__ float reduce_partials(const PrepassParams& p, int bhk, int c, bool is_v) {
  const float* part = (is_v ? p.part_vmax : p.part_ksum) + static_cast<int64_t>(bhk) * p.stat_chunks * kHD + c;
  float acc = 0.f;
  for (int ch0 = 0; ch0 < p.stat_chunks; ch0 += 8) {
    float x[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) x[j] = ch0 + j < p.stat_chunks ? part[(ch0 + j) * kHD] : 0.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) acc = is_v ? fmaxf(acc, x[j]) : acc + x[j];
  }
  return acc;
}

// What the K / V quantization uses per channel: k-bar (the mean of the valid keys with kKeys; 0 without smooth_k or
// without any valid key) or Vr / amaxV (0 for an all-zero channel), from reduce_partials' `acc` of batch b's head.
template <bool kKeys>
__device__ __forceinline__ float head_stat(const PrepassParams& p, const cuda::KeyValidity& keys, int b, bool is_v,
                                           float acc) {
  if (is_v) return acc > 0.f ? p.v_range / acc : 0.f;
  if constexpr (kKeys) {
    const int n = keys.count(b);
    return p.smooth_k && n > 0 ? acc / static_cast<float>(n) : 0.f;
  } else {
    return p.smooth_k ? acc / static_cast<float>(p.kv_len) : 0.f;
  }
}

// ---- a kv head's statistics inside a cluster (single-launch quantization) -----------------------------
// The channel sums of K (is_v false) or max |V| of this CTA's rows (rows past kv_len were loaded as zeros), then over
// the cluster's CTAs through distributed shared memory; thread c < kHD gets channel c's value for the whole head.
// The caller arrives once more when it has used the result (the others read this CTA's partials until then) and waits
// on that phase before it exits.
template <class Tile, int kHD>
__device__ __forceinline__ float reduce_in_cluster(const Tile& held, bool is_v, int tid) {
  __shared__ float s_warp[kPrepassThreads / 32][kHD];
  __shared__ float s_part[kHD];
  const int lane = tid & 31;
  // 16-bit inputs: a copy the compiler cannot see through, or it keeps the values converted here alive for the
  // quantization after the cluster barriers (bf16: 121 registers instead of 64, fewer CTAs per SM). fp32 rows need
  // no conversion, and a copy would double them.
  Tile rows = held;
  if constexpr (Tile::kVec == 8) {
#pragma unroll
    for (int st = 0; st < Tile::kSteps; ++st) {
      pin(rows.raw[st].x);
      pin(rows.raw[st].y);
      pin(rows.raw[st].z);
      pin(rows.raw[st].w);
    }
  }
  float part[Tile::kVec];
#pragma unroll
  for (int i = 0; i < Tile::kVec; ++i) part[i] = 0.f;
#pragma unroll
  for (int st = 0; st < Tile::kSteps; ++st) {
#pragma unroll
    for (int i = 0; i < Tile::kVec; ++i) {
      const float x = rows.value(st, i);
      part[i] = is_v ? fmaxf(part[i], fabsf(x)) : part[i] + x;
    }
  }
#pragma unroll
  for (int b = Tile::kLanes; b < 32; b <<= 1) {  // lanes holding the same channels of other rows
#pragma unroll
    for (int i = 0; i < Tile::kVec; ++i) {
      const float o = __shfl_xor_sync(0xffffffffu, part[i], b);
      part[i] = is_v ? fmaxf(part[i], o) : part[i] + o;
    }
  }
  if (lane < Tile::kLanes) {
#pragma unroll
    for (int i = 0; i < Tile::kVec; ++i) s_warp[tid >> 5][Tile::chan_of(lane) + i] = part[i];
  }
  __syncthreads();
  if (tid < kHD) {
    float acc = 0.f;
#pragma unroll
    for (int w = 0; w < kPrepassThreads / 32; ++w) acc = is_v ? fmaxf(acc, s_warp[w][tid]) : acc + s_warp[w][tid];
    s_part[tid] = acc;
  }
  cluster_arrive();
  cluster_wait();
  float acc = 0.f;
  if (tid < kHD) {
    const uint32_t at = smem_u32(&s_part[tid]);
    const uint32_t n = cluster_size();
    for (uint32_t r = 0; r < n; ++r) {
      const float x = ld_shared_cluster_f32(at, r);
      acc = is_v ? fmaxf(acc, x) : acc + x;
    }
  }
  return acc;
}

// ---- pass 2: K codes or V^T codes of 128 keys of one kv head ----------------------------------------
// V^T goes through shared memory [kHD][128] bytes; the 16-byte groups of channel row c are XOR-swizzled
// by (c / 8) % 8 so that the byte stores of lanes holding neighbouring channel octets hit different banks.
__device__ __forceinline__ int vt_swizzle(int c, int pos) { return pos ^ (((c >> 3) & 7) << 4); }

// Two CTAs per 128-key tile: even `order` quantizes its K rows, odd ones its V rows (order / 2 = kv head * kv_tiles +
// tile). Holding one tensor's rows per thread instead of both halves the registers, so more CTAs per SM keep loads in
// flight.
// kClustered (single-launch quantization, kv_len <= 128 * 16): `order` counts whole clusters of p.kv_cluster CTAs, the
// K or V tiles of one kv head (cluster rank = tile, heads in reverse order); the head's statistics come from the
// cluster's own rows (reduce_in_cluster) instead of pass 1's partials, so K and V cross DRAM once.
template <typename T, int kHD, bool kKeys, bool kClustered = false>
__device__ __forceinline__ void kv_cta(const PrepassParams& p, const cuda::KeyValidity& keys, int order) {
  using Tile = RowTile<T, kHD, kWarpTokens>;
  __shared__ float s_stat[kHD];  // K: k-bar; V: Vr / amax
  __shared__ float s_row[kPrepassTokens];
  __shared__ float s_grp[8];
  __shared__ __align__(16) uint8_t s_vt[kHD][kPrepassTokens];

  bool is_v;
  int bhk, tile;
  if constexpr (kClustered) {
    const int cluster = order / p.kv_cluster;
    const int heads = p.batch * p.kv_heads;
    is_v = (cluster & 1) != 0;
    bhk = heads - 1 - (cluster >> 1);
    tile = order % p.kv_cluster;
  } else {
    is_v = (order & 1) != 0;
    const int cta = order >> 1;
    bhk = cta / p.kv_tiles;
    tile = cta % p.kv_tiles;
  }
  const int b = bhk / p.kv_heads;
  const int g = bhk % p.kv_heads;
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int first = tile * kPrepassTokens + kWarpTokens * warp;
  const auto gran = static_cast<schema::QkGranularity>(p.granularity);

  // kKeys: keys at or past key_end are not valid (nothing there is read); with a key-padding mask, row_ok has
  // the bit of each step whose row is a valid key (a warp's rows lie in one 64-key word of the bits). The
  // unmasked passes keep their code exactly (every kKeys change is under `if constexpr`).
  [[maybe_unused]] int key_end = p.kv_len;
  [[maybe_unused]] uint32_t row_ok = ~0u;
  if constexpr (kKeys) {
    key_end = keys.end(b);
    // Never loaded by the attention kernel. (Tile 0 always runs and waits for pass 1 below, so this grid's
    // completion still implies pass 1's, which the attention kernel relies on.)
    if (tile > 0 && tile * kPrepassTokens >= key_end) return;
    if (keys.bits != nullptr && first < key_end) {
      const uint64_t word = keys.bits[static_cast<int64_t>(b) * keys.tiles + first / 64];
      const uint32_t valid32 = static_cast<uint32_t>(word >> (first % 64));
      row_ok = 0;
#pragma unroll
      for (int st = 0; st < Tile::kSteps; ++st) row_ok |= ((valid32 >> Tile::row_of(st, lane)) & 1u) << st;
    }
  }

  // Issue this tile's loads before reducing the partial statistics, to overlap their latency.
  Tile rows;
  const T* base = is_v ? static_cast<const T*>(p.v) + b * p.v_batch_stride + g * p.v_head_stride +
                             first * p.v_token_stride
                       : static_cast<const T*>(p.k) + b * p.k_batch_stride + g * p.k_head_stride +
                             first * p.k_token_stride;
  const int64_t stride = is_v ? p.v_token_stride : p.k_token_stride;
  const bool vec = (is_v ? p.vec_v : p.vec_k) != 0;
  if constexpr (kKeys) {
    rows.load(base, stride, key_end - first, p.head_dim, vec, lane, row_ok);
  } else {
    rows.load(base, stride, p.kv_len - first, p.head_dim, vec, lane);
  }

  if constexpr (kClustered) {
    const float acc = reduce_in_cluster<Tile, kHD>(rows, is_v, tid);
    if (tid < kHD) {
      s_stat[tid] = head_stat<kKeys>(p, keys, b, is_v, acc);
      if (is_v && tile == 0) p.v_scale[static_cast<int64_t>(bhk) * kHD + tid] = acc > 0.f ? acc / p.v_range : 0.f;
    }
  } else {
    griddep_wait();  // pass 1's partial statistics (launched as a dependent of pass 1: host/dependent_launch.h)
    if (tid < kHD) {
      const float acc = reduce_partials<kHD>(p, bhk, tid, is_v);
      s_stat[tid] = head_stat<kKeys>(p, keys, b, is_v, acc);
      if (is_v && tile == 0) p.v_scale[static_cast<int64_t>(bhk) * kHD + tid] = acc > 0.f ? acc / p.v_range : 0.f;
    }
  }
  __syncthreads();
  // Done reading the other CTAs' partials (their uses are above this CTA barrier): tell them, without the release
  // fence of an ordering arrive, which waited for this CTA's outstanding memory operations (-4..6% quantization time).
  if constexpr (kClustered) cluster_arrive_relaxed();

  const int c0 = Tile::chan_of(lane);
  float stat[Tile::kVec];
#pragma unroll
  for (int i = 0; i < Tile::kVec; ++i) stat[i] = s_stat[c0 + i];

  if (is_v) {
    // V: e4m3 codes into the transposed, permuted tile (rows past kv_len and invalid keys were loaded as zeros).
#pragma unroll
    for (int st = 0; st < Tile::kSteps; ++st) {
      const int rt = kWarpTokens * warp + Tile::row_of(st, lane);
      const int pos = (rt & ~15) + v_position_in_group(rt & 15);
#pragma unroll
      for (int i = 0; i < Tile::kVec; ++i) {
        const int c = c0 + i;
        s_vt[c][vt_swizzle(c, pos)] =
            static_cast<uint8_t>(__nv_cvt_float_to_fp8(rows.value(st, i) * stat[i], __NV_SATFINITE, __NV_E4M3));
      }
    }
    __syncthreads();
    for (int idx = tid; idx < kHD * (kPrepassTokens / 16); idx += kPrepassThreads) {
      const int c = idx / (kPrepassTokens / 16);
      const int grp = idx % (kPrepassTokens / 16);
      const int col = tile * kPrepassTokens + 16 * grp;
      if (col < p.kv_len16) {
        *reinterpret_cast<uint4*>(p.v8t + (static_cast<int64_t>(bhk) * kHD + c) * p.kv_len16 + col) =
            *reinterpret_cast<const uint4*>(&s_vt[c][vt_swizzle(c, 16 * grp)]);
      }
    }
    if constexpr (kClustered) cluster_wait();  // the cluster's reads of this CTA's partials are done
    return;
  }

  // K: smoothed row amax -> group amax (per_thread: 4 groups of 16 keys per 64-key block, else one).
#pragma unroll
  for (int st = 0; st < Tile::kSteps; ++st) {
    const int r = Tile::row_of(st, lane);
    float m = 0.f;
    bool valid = first + r < p.kv_len;
    if constexpr (kKeys) valid = first + r < key_end && ((row_ok >> st) & 1u);  // invalid keys: outside the amax
    if (valid) {
#pragma unroll
      for (int i = 0; i < Tile::kVec; ++i) m = fmaxf(m, fabsf(rows.value(st, i) - stat[i]));
    }
    m = row_group_max<Tile::kLanes>(m);
    if (lane % Tile::kLanes == 0) s_row[kWarpTokens * warp + r] = m;
  }
  __syncthreads();
  const bool per_thread = gran == schema::QkGranularity::kPerThread;
  {
    float m = -1.f;  // -1: this thread leads no group
    int leader = 0;
    if (per_thread) {
      if (tid < 8) {
        const int blk64 = tid / 4, gi = tid % 4;
        m = 0.f;
#pragma unroll
        for (int k = 0; k < 8; ++k) {
          m = fmaxf(m, fmaxf(s_row[64 * blk64 + 8 * k + 2 * gi], s_row[64 * blk64 + 8 * k + 2 * gi + 1]));
        }
        leader = 64 * blk64 + 2 * gi;
        s_grp[tid] = m;
      }
    } else if (warp < 4) {  // warps 0, 2 lead the two 64-key blocks
      const int blk64 = warp / 2;
      float x = row_group_max<32>(fmaxf(s_row[64 * blk64 + lane], s_row[64 * blk64 + 32 + lane]));
      if (lane == 0 && (warp & 1) == 0) {
        m = x;
        leader = 64 * blk64;
        s_grp[blk64] = m;
      }
    }
    if (m >= 0.f) {
      const int64_t slot = k_group_of(tile * kPrepassTokens + leader, gran);
      if (slot < p.k_groups) p.k_scale[static_cast<int64_t>(bhk) * p.k_groups + slot] = m / static_cast<float>(p.qmax);
    }
  }
  __syncthreads();
  const float qmax = static_cast<float>(p.qmax);
#pragma unroll
  for (int st = 0; st < Tile::kSteps; ++st) {
    const int r = Tile::row_of(st, lane);
    const int rt = kWarpTokens * warp + r;  // row in the CTA tile
    if (first + r < p.kv_len) {
      const float amax = s_grp[per_thread ? 4 * (rt / 64) + (rt % 8) / 2 : rt / 64];
      const float inv = amax > 0.f ? qmax / amax : 0.f;
      float x[Tile::kVec];
#pragma unroll
      for (int i = 0; i < Tile::kVec; ++i) x[i] = rows.value(st, i) - stat[i];
      if constexpr (kKeys) {  // invalid keys: zero rows, not -mean
        if (!(first + r < key_end && ((row_ok >> st) & 1u))) {
#pragma unroll
          for (int i = 0; i < Tile::kVec; ++i) x[i] = 0.f;
        }
      }
      store_code_piece<Tile::kVec>(p.k8 + (static_cast<int64_t>(bhk) * p.kv_len + first + r) * kHD + c0, x, inv, qmax);
    }
  }
  if constexpr (kClustered) cluster_wait();
}

// Heads in reverse order: pass 1's stats CTAs read the last heads' K and V last, so those are still in L2 when the
// first CTAs of this pass (started early, host/dependent_launch.h) read them again; and the codes of head 0, which the
// attention kernel reads first, are written last.
__device__ __forceinline__ int pass2_order() {
  griddep_launch_dependents();  // the attention kernel's CTAs wait for this grid in their prologue
  return static_cast<int>(gridDim.x - 1 - blockIdx.x);
}

// Single-launch quantization of short sequences (kv_len <= 128 * 16, no key masks): Q CTAs as in pass 1, then one
// cluster of kv_cluster CTAs per kv head and tensor (kv_cta<kClustered>). Nothing reads another launch's output.
template <typename T, int kHD>
__global__ void __launch_bounds__(kPrepassThreads) sm90_prepass_clustered_kernel(const PrepassParams p) {
  griddep_launch_dependents();  // the attention kernel's CTAs wait for this grid in their prologue
  const int cta = static_cast<int>(blockIdx.x);
  if (cta < p.q_cluster_pad) {
    if (cta < p.q_blocks) quantize_q_tile<T, kHD>(p, cta);
    return;
  }
  kv_cta<T, kHD, false, true>(p, cuda::KeyValidity{}, cta - p.q_cluster_pad);
}

template <typename T, int kHD>
__global__ void __launch_bounds__(kPrepassThreads) sm90_prepass_kv_kernel(const PrepassParams p) {
  kv_cta<T, kHD, false>(p, cuda::KeyValidity{}, pass2_order());
}

// key_lengths / key-padding mask: invalid keys become zero rows, tiles past the batch's end are skipped.
template <typename T, int kHD>
__global__ void __launch_bounds__(kPrepassThreads)
    sm90_prepass_kv_keys_kernel(const PrepassParams p, const cuda::KeyValidity keys) {
  kv_cta<T, kHD, true>(p, keys, pass2_order());
}

}  // namespace sage::sm90
