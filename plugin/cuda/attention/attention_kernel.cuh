// The mma.sync SageAttention kernel shared by the "sm80" (FP16 P~.V) and "sm89" (FP8 P~.V) paths.
//
// One CTA computes 128 query rows of one (batch, head); each warp owns kWarpRows of them (traits.h). Per
// 64-key block:
//   S = Qc.Kc^T on integer tensor cores,
//   t = S * dQ*dK*scale*log2(e) (+ the smooth-Q term), masked, online softmax in base 2,
//   P~ repacked from the S accumulator registers straight into the P~.V A operand, O += P~.V.
// K/V blocks are double-buffered in swizzled shared memory with cp.async: block j+1 is in flight while
// block j is computed, so each iteration needs one barrier. Numerics: docs/OP_CONTRACT.md.
//
// Masks (contract, "Masks"): key_lengths and causal masking (either alignment) only move the loop bound and the
// diagonal, so every kernel handles them; the mask kernels (Tr::kMasks) also read a key-padding bitmask once per
// 64-key block or a general attn_mask per score. Unmasked blocks run the same branch-free body in both.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "../common/convert.cuh"
#include "../common/copy.cuh"
#include "../common/mma.cuh"
#include "../common/warp_reduce.cuh"
#include "attention_args.h"
#include "quant_groups.h"
#include "traits.h"

namespace sage::cuda {

namespace attention_detail {

inline constexpr float kLog2PRange = 8.807354922057604f;  // log2(448): exp2 then lands in [0, 448]
inline constexpr int kIntBias = 0x4B400000;                // float bits of 1.5*2^23 (see small_int_to_float)

// Copies kRows rows of Q or K codes (contiguous rows of kQkRowBytes) into a swizzled tile. Thread tid always
// copies chunk tid % kChunks of rows tid / kChunks + i * kRowsPerRound, so its swizzled offset only moves by a
// constant per round.
template <class Tr, int kRows>
__device__ __forceinline__ void load_code_tile(uint8_t* tile, const int8_t* src, int tid) {
  constexpr int kChunks = Tr::kQkRowBytes / 16;
  constexpr int kRowsPerRound = Tr::kThreads / kChunks;
  const int r0 = tid / kChunks, c = tid % kChunks;
  const int smem_off = swizzle<Tr::kQkRowBytes>(r0, c), gmem_off = r0 * Tr::kQkRowBytes + c * 16;
#pragma unroll
  for (int i = 0; i < (kRows + kRowsPerRound - 1) / kRowsPerRound; ++i) {
    if (kRows % kRowsPerRound != 0 && r0 + i * kRowsPerRound >= kRows) break;
    cp_async_16(tile + smem_off + i * kRowsPerRound * Tr::kQkRowBytes,
                src + gmem_off + i * kRowsPerRound * Tr::kQkRowBytes);
  }
}

// FP16 V block: 64 token rows of head_dim halves. Rows past the sequence and channel chunks past the data
// are zero-filled, so P~ = 0 never meets garbage (0 * NaN would poison O). Offsets are 32-bit: the runner
// guarantees kv_len_pad * token_stride < 2^31 (else it copies V into the workspace first).
template <class Tr>
__device__ __forceinline__ void load_v_tile_f16(uint8_t* tile, const __half* src, int token_stride,
                                                int valid_tokens, int valid_chunks, int tid) {
  constexpr int kChunks = Tr::kHeadDim / 8;
  constexpr int kRowsPerRound = Tr::kThreads / kChunks;
  static_assert(Tr::kBlockK * kChunks % Tr::kThreads == 0, "whole rounds of 16-byte copies");
  const int r0 = tid / kChunks, c = tid % kChunks;  // each thread keeps one channel chunk
  const bool chunk_ok = c < valid_chunks;
#pragma unroll
  for (int i = 0; i < Tr::kBlockK / kRowsPerRound; ++i) {
    const int r = r0 + i * kRowsPerRound;
    const bool ok = chunk_ok && r < valid_tokens;
    cp_async_16(tile + swizzle<Tr::kVRowBytes>(r, c), src + (ok ? r * token_stride + c * 8 : 0), ok);
  }
}

// FP8 V block: head_dim channel rows of 64 E4M3 codes (already padded and permuted in the workspace).
template <class Tr>
__device__ __forceinline__ void load_v_tile_f8(uint8_t* tile, const uint8_t* src, int row_stride, int tid) {
  constexpr int kChunks = Tr::kBlockK / 16;
  constexpr int kRowsPerRound = Tr::kThreads / kChunks;
  static_assert(Tr::kHeadDim * kChunks % Tr::kThreads == 0, "whole rounds of 16-byte copies");
  const int r0 = tid / kChunks, c = tid % kChunks;
#pragma unroll
  for (int i = 0; i < Tr::kHeadDim / kRowsPerRound; ++i) {
    const int r = r0 + i * kRowsPerRound;
    cp_async_16(tile + swizzle<Tr::kVRowBytes>(r, c), src + r * row_stride + c * 16);
  }
}

template <typename T>
__device__ __forceinline__ void store_pair(T* p, float x0, float x1, bool two, bool vec2) {
  if (two && vec2) {
    if constexpr (sizeof(T) == 4) {
      *reinterpret_cast<float2*>(p) = make_float2(x0, x1);
    } else {
      T pair[2] = {float_to<T>(x0), float_to<T>(x1)};
      *reinterpret_cast<uint32_t*>(p) = *reinterpret_cast<const uint32_t*>(pair);
    }
    return;
  }
  p[0] = float_to<T>(x0);
  if (two) p[1] = float_to<T>(x1);
}

// Writes this lane's normalized O: rows row0 + 16m and row0 + 16m + 8 of every m16 tile, channels 8n+2t and
// 8n+2t+1 of every n8 tile.
template <class Tr, typename T>
__device__ __forceinline__ void store_output(const AttentionArgs& a, const float (&o)[Tr::kMTiles][Tr::kOTiles][4],
                                             int batch, int head, int row0, int t,
                                             const float (&inv)[Tr::kMTiles][2], const float* v_scale) {
  T* base = static_cast<T*>(a.out) + batch * a.out_batch_stride + head * a.out_head_stride;
#pragma unroll
  for (int m = 0; m < Tr::kMTiles; ++m) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int row = row0 + 16 * m + 8 * half;
      if (row >= a.q_len) continue;
      T* out_row = base + row * a.out_token_stride;
#pragma unroll
      for (int n = 0; n < Tr::kOTiles; ++n) {
        const int ch = n * 8 + 2 * t;
        if (ch >= a.head_dim) continue;
        float s0 = inv[m][half], s1 = inv[m][half];
        if constexpr (Tr::kFp8Pv) {
          s0 *= v_scale[ch];
          s1 *= v_scale[ch + 1];
        }
        store_pair<T>(out_row + ch, o[m][n][2 * half] * s0, o[m][n][2 * half + 1] * s1, ch + 1 < a.head_dim,
                      a.out_vec2);
      }
    }
  }
}

// The additive bias of two neighbouring keys of a general mask in base-2 logit units: log2(e) * mask for an
// additive mask, 0 / -inf for a bool one (so that both are one add). Keys at or past kv_len are not read.
template <typename M>
__device__ __forceinline__ float mask_bias(M x) {
  if constexpr (std::is_same_v<M, uint8_t>) {
    return x != 0 ? 0.f : -INFINITY;
  } else {
    return 1.4426950408889634f * load_as_float<M>(&x);
  }
}

template <typename M>
__device__ __forceinline__ float2 mask_pair(const M* row, int key, int kv_len, bool vec2) {
  M x0, x1;
  if (vec2 && key + 1 < kv_len) {  // 2-element aligned: one load
    struct alignas(2 * sizeof(M)) Pair {
      M v[2];
    };
    const Pair pr = *reinterpret_cast<const Pair*>(row + key);
    x0 = pr.v[0];
    x1 = pr.v[1];
  } else {
    // Past kv_len the key is masked by its length anyway: any neutral value will do.
    x0 = key < kv_len ? row[key] : row[0];
    x1 = key + 1 < kv_len ? row[key + 1] : row[0];
  }
  return make_float2(mask_bias<M>(x0), mask_bias<M>(x1));
}

// Adds a general attn_mask to this lane's logits: rows row0 + 16m + 8h, keys kv_base + 8n + 2t + {0, 1}. Rows
// past q_len read the last row (their output is never stored), so nothing outside the mask is read.
template <class Tr, typename M>
__device__ __forceinline__ void apply_general_mask(const AttentionArgs& a, float (&s)[Tr::kMTiles][Tr::kSTiles][4],
                                                   int batch, int head, int row0, int kv_base, int t) {
  const M* base = static_cast<const M*>(a.mask) + batch * a.mask_stride_b + head * a.mask_stride_h;
#pragma unroll
  for (int m = 0; m < Tr::kMTiles; ++m) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const M* row = base + min(row0 + 16 * m + 8 * h, a.q_len - 1) * a.mask_stride_q;
#pragma unroll
      for (int n = 0; n < Tr::kSTiles; ++n) {
        const float2 bias = mask_pair<M>(row, kv_base + n * 8 + 2 * t, a.kv_len, a.mask_vec2);
        s[m][n][2 * h] += bias.x;
        s[m][n][2 * h + 1] += bias.y;
      }
    }
  }
}

// Smooth-Q: delta_s[j] = sum_d qbar_codes[d] * Kc[j, d] for the 64 keys of the block in shared memory, with
// kThreads / 64 threads per key (each a slice of the channels) and dp4a; INT4 keys are widened to int8 first.
// The qbar codes are re-read from L1 each block rather than held in registers the main path needs.
template <class Tr>
__device__ __forceinline__ void compute_delta_s(const uint8_t* k_tile, const int8_t* qbar_codes, int* delta_s,
                                                int tid) {
  constexpr int kParts = Tr::kThreads / Tr::kBlockK;  // 2 or 4 threads per key
  constexpr int kPartBytes = Tr::kQkRowBytes / kParts;
  const int key = tid / kParts, part = tid % kParts;
  const uint32_t* qbar = reinterpret_cast<const uint32_t*>(qbar_codes + part * (Tr::kHeadDim / kParts));
  int acc = 0;
#pragma unroll
  for (int w = 0; w < kPartBytes / 4; ++w) {
    const int byte = part * kPartBytes + 4 * w;
    const uint32_t kw =
        *reinterpret_cast<const uint32_t*>(k_tile + swizzle<Tr::kQkRowBytes>(key, byte / 16) + byte % 16);
    if constexpr (Tr::kInt4) {
      // byte m holds channel 2m in its low nibble and 2m+1 in its high nibble; (x ^ 8) - 8 sign-extends.
      const uint32_t even = __vsub4((kw & 0x0F0F0F0Fu) ^ 0x08080808u, 0x08080808u);
      const uint32_t odd = __vsub4(((kw >> 4) & 0x0F0F0F0Fu) ^ 0x08080808u, 0x08080808u);
      const uint32_t q0 = __ldg(qbar + 2 * w), q1 = __ldg(qbar + 2 * w + 1);
      acc = __dp4a(static_cast<int>(even), static_cast<int>(__byte_perm(q0, q1, 0x6420)), acc);
      acc = __dp4a(static_cast<int>(odd), static_cast<int>(__byte_perm(q0, q1, 0x7531)), acc);
    } else {
      acc = __dp4a(static_cast<int>(kw), static_cast<int>(__ldg(qbar + w)), acc);
    }
  }
#pragma unroll
  for (int x = 1; x < kParts; x <<= 1) acc += __shfl_xor_sync(0xffffffffu, acc, x);
  if (part == 0) delta_s[key] = acc;
}

template <class Tr>
__device__ __forceinline__ void attention_body(const AttentionArgs& a) {
  constexpr int kRB = Tr::kQkRowBytes;
  constexpr int kM = Tr::kMTiles;
  extern __shared__ __align__(128) uint8_t smem[];
  uint8_t* stages = smem + Tr::kQRegionBytes;
  int* delta_s = reinterpret_cast<int*>(smem + Tr::kSmemBytes);  // smooth_q: 64 ints after the stages

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  // Causal: the last Q tiles have the most keys; launching them first evens out the tail of the grid.
  const int q_tile = a.causal ? static_cast<int>(gridDim.x - 1 - blockIdx.x) : static_cast<int>(blockIdx.x);
  const int head = blockIdx.y, batch = blockIdx.z;
  const int kv_head = head / (a.q_heads / a.kv_heads);
  const int64_t bh = static_cast<int64_t>(batch) * a.q_heads + head;
  const int64_t bkv = static_cast<int64_t>(batch) * a.kv_heads + kv_head;
  const int q0 = q_tile * Tr::kBlockQ;
  const int row0 = q0 + warp * Tr::kWarpRows + g;  // this lane's rows: row0 + 16m + 8h

  // Keys of this batch: [0, kv_lim) may be valid (key_lengths, clamped; kv_len without it), none at or past
  // key_end is (a key-padding mask's last valid key + 1), and causal row i sees keys j <= i + causal_off.
  const int kv_lim = a.keys.length(batch);
  int key_end = kv_lim;
  if constexpr (Tr::kMasks) {
    if (a.keys.bits != nullptr) key_end = a.keys.stats[2 * batch + 1];
  }
  const int causal_off = a.causal_bottom_right ? kv_lim - a.q_len : 0;
  int kv_end = key_end;
  if (a.causal) {
    kv_end = static_cast<int>(max(int64_t{0}, min(static_cast<int64_t>(key_end),
                                                  static_cast<int64_t>(q0) + Tr::kBlockQ + causal_off)));
  }
  const int n_blocks = (kv_end + Tr::kBlockK - 1) / Tr::kBlockK;  // 0: no visible key, the output is 0

  const int8_t* k_head = a.k_codes + bkv * a.kv_len_pad * kRB;
  const __half* v_head_f16 = nullptr;
  const uint8_t* v_head_f8 = nullptr;
  if constexpr (Tr::kFp8Pv) {
    v_head_f8 = static_cast<const uint8_t*>(a.v) + bkv * Tr::kHeadDim * a.kv_len_pad;
  } else {
    v_head_f16 = static_cast<const __half*>(a.v) + batch * a.v_batch_stride + kv_head * a.v_head_stride;
  }
  auto load_block = [&](int blk) {
    uint8_t* k_tile = stages + (blk & 1) * Tr::kStageBytes;
    uint8_t* v_tile = k_tile + Tr::kKTileBytes;
    const int kv_base = blk * Tr::kBlockK;
    load_code_tile<Tr, Tr::kBlockK>(k_tile, k_head + kv_base * kRB, tid);
    if constexpr (Tr::kFp8Pv) {
      load_v_tile_f8<Tr>(v_tile, v_head_f8 + kv_base, a.kv_len_pad, tid);
    } else {
      const int token_stride = static_cast<int>(a.v_token_stride);
      // Tokens past key_end are zero-filled: padding V (read in place) never meets a p = 0 (0 * NaN).
      load_v_tile_f16<Tr>(v_tile, v_head_f16 + kv_base * token_stride, token_stride, key_end - kv_base,
                          a.v_valid_chunks, tid);
    }
  };

  // ldmatrix row addresses. Within one operand the swizzle XOR depends only on the lane (rows advance in steps
  // of 16), and chunk 2k+b equals chunk b XOR 2k, so every address is a per-lane offset XOR a constant: no
  // per-(k, n) address registers.
  const int q_lane_off = swizzle<kRB>(warp * Tr::kWarpRows + (lane & 7) + ((lane >> 3) & 1) * 8, lane >> 4);
  const int k_lane_off = swizzle<kRB>((lane >> 4) * 8 + (lane & 7), (lane >> 3) & 1);
  const int v_lane_off = Tr::kFp8Pv ? swizzle<Tr::kVRowBytes>((lane >> 4) * 8 + (lane & 7), (lane >> 3) & 1)
                                    : swizzle<Tr::kVRowBytes>(((lane >> 3) & 1) * 8 + (lane & 7), lane >> 4);

  // Prologue: the Q tile and KV block 0.
  uint8_t* q_smem = smem + Tr::kQStageOffset;
  load_code_tile<Tr, Tr::kBlockQ>(q_smem, a.q_codes + (bh * a.q_len_pad + q0) * kRB, tid);
  // Block 0 is loaded even when n_blocks = 0 (no visible key): it lies inside the workspace / zero-fills V, is
  // never used, and the unconditional load keeps the prologue branch-free (the guard cost the plain kernel spills).
  load_block(0);
  cp_async_commit();
  uint32_t q_frag[Tr::kQInRegisters ? kM : 1][Tr::kQInRegisters ? Tr::kQkSteps : 1][4];
  if constexpr (Tr::kQInRegisters) {
    cp_async_wait<0>();
    __syncthreads();
#pragma unroll
    for (int m = 0; m < kM; ++m) {
#pragma unroll
      for (int kk = 0; kk < Tr::kQkSteps; ++kk) {
        ldmatrix_x4(q_frag[m][kk], q_smem + ((q_lane_off + m * 16 * kRB) ^ (kk << 5)));
      }
    }
  }

  const auto gran = static_cast<schema::QkGranularity>(a.granularity);
  // All rows of a lane (row0 + 16m + 8h within one 32-row slice) share one Q group under every granularity.
  const float q_scale = a.q_scales[bh * a.q_slots + q_group_of(row0, gran)] * a.sm_scale_log2;
  const float* k_scales = a.k_scales + bkv * a.k_slots;

  float qbar_scale = 0.f;
  const int8_t* qbar_codes = nullptr;
  if (a.smooth_q) {
    const int64_t tile_index = bh * (a.q_len_pad / Tr::kBlockQ) + q_tile;
    qbar_scale = a.qbar_scales[tile_index] * a.sm_scale_log2;
    qbar_codes = a.qbar_codes + tile_index * Tr::kHeadDim;
  }

  float o[kM][Tr::kOTiles][4];
#pragma unroll
  for (int m = 0; m < kM; ++m) {
#pragma unroll
    for (int n = 0; n < Tr::kOTiles; ++n) o[m][n][0] = o[m][n][1] = o[m][n][2] = o[m][n][3] = 0.f;
  }
  float row_max[kM][2], row_sum[kM][2];
#pragma unroll
  for (int m = 0; m < kM; ++m) {
    row_max[m][0] = row_max[m][1] = -INFINITY;
    row_sum[m][0] = row_sum[m][1] = 0.f;
  }

  // One 64-key block. kMasked: the block needs the causal / length mask (and, in the mask kernels, the key bits
  // `key_word` or the general mask); kSmoothQ: add the smooth-Q term. Both are compile-time so that the common
  // block (neither) is one branch-free stretch the compiler can schedule freely, and its softmax max can be
  // taken on the integer accumulators.
  auto step = [&](int blk, auto masked_tag, auto smooth_tag, [[maybe_unused]] uint64_t key_word) {
    constexpr bool kMasked = decltype(masked_tag)::value;
    constexpr bool kSmoothQ = decltype(smooth_tag)::value;
    constexpr bool kIntMax = !kMasked && !kSmoothQ;
    // INT8 only: with INT4's small dot products the constant's rounding (0.375 dot units) is relatively larger.
    constexpr bool kBiasFold = kIntMax && !Tr::kInt4;
    const int kv_base = blk * Tr::kBlockK;
    const uint8_t* k_tile = stages + (blk & 1) * Tr::kStageBytes;
    const uint8_t* v_tile = k_tile + Tr::kKTileBytes;
    // Block blk has landed, and every warp is done with block blk-1, whose stage the next load reuses.
    cp_async_wait<0>();
    __syncthreads();
    if (blk + 1 < n_blocks) load_block(blk + 1);
    cp_async_commit();

    if constexpr (kSmoothQ) compute_delta_s<Tr>(k_tile, qbar_codes, delta_s, tid);

    // S = Qc . Kc^T. One ldmatrix.x4 on K gives b0/b1 of two n8 tiles (keys 16np.., 16np+8..), shared by the
    // warp's m16 tiles.
    int acc[kM][Tr::kSTiles][4];
#pragma unroll
    for (int m = 0; m < kM; ++m) {
#pragma unroll
      for (int n = 0; n < Tr::kSTiles; ++n) acc[m][n][0] = acc[m][n][1] = acc[m][n][2] = acc[m][n][3] = 0;
    }
#pragma unroll
    for (int kk = 0; kk < Tr::kQkSteps; ++kk) {
      uint32_t qf[kM][4];
#pragma unroll
      for (int m = 0; m < kM; ++m) {
        if constexpr (Tr::kQInRegisters) {
#pragma unroll
          for (int i = 0; i < 4; ++i) qf[m][i] = q_frag[m][kk][i];
        } else {
          ldmatrix_x4(qf[m], q_smem + ((q_lane_off + m * 16 * kRB) ^ (kk << 5)));
        }
      }
#pragma unroll
      for (int np = 0; np < Tr::kSTiles / 2; ++np) {
        uint32_t b[4];
        ldmatrix_x4(b, k_tile + np * 16 * kRB + (k_lane_off ^ (kk << 5)));
#pragma unroll
        for (int m = 0; m < kM; ++m) {
          if constexpr (Tr::kInt4) {
            mma_s4_m16n8k64(acc[m][2 * np], qf[m], b[0], b[1]);
            mma_s4_m16n8k64(acc[m][2 * np + 1], qf[m], b[2], b[3]);
          } else {
            mma_s8_m16n8k32(acc[m][2 * np], qf[m], b[0], b[1]);
            mma_s8_m16n8k32(acc[m][2 * np + 1], qf[m], b[2], b[3]);
          }
        }
      }
    }

    // Dequantize into base-2 logits t = S * c. This lane's keys 8n+2t, 8n+2t+1 share one K group, its rows one
    // Q group, so c is one number. Unmasked blocks without smooth-Q keep S unscaled: their max is taken on the
    // integers (c >= 0 keeps the order) and c is applied inside the exp2 argument's FMA.
    const float k_scale = k_scales[k_group_of(kv_base + 2 * t, gran)];
    const float c = q_scale * k_scale;
    float s[kM][Tr::kSTiles][4];
#pragma unroll
    for (int m = 0; m < kM; ++m) {
#pragma unroll
      for (int n = 0; n < Tr::kSTiles; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          // kIntMax keeps the biased float acc + 1.5*2^23 (exact); the bias is folded into the exp2 FMA below.
          s[m][n][e] = kBiasFold ? __int_as_float(acc[m][n][e] + kIntBias)
                       : kIntMax ? small_int_to_float(acc[m][n][e])
                                 : small_int_to_float(acc[m][n][e]) * c;
        }
      }
    }
    if constexpr (kSmoothQ) {
      __syncthreads();  // delta_s of all 64 keys is written
      const float cb = qbar_scale * k_scale;
#pragma unroll
      for (int n = 0; n < Tr::kSTiles; ++n) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float ds = static_cast<float>(delta_s[n * 8 + 2 * t + e]) * cb;
#pragma unroll
          for (int m = 0; m < kM; ++m) {
            s[m][n][e] += ds;
            s[m][n][e + 2] += ds;
          }
        }
      }
    }
    // Only the ragged end of the valid keys, (causal) the blocks crossing the diagonal and, in the mask kernels,
    // blocks with padding holes or a general mask need masking. Masked logits are -inf: they never raise the
    // max and exp2 gives exactly 0.
    if constexpr (kMasked) {
#pragma unroll
      for (int m = 0; m < kM; ++m) {
#pragma unroll
        for (int n = 0; n < Tr::kSTiles; ++n) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int j = n * 8 + 2 * t + (e & 1);
            const int key = kv_base + j;
            const int row = row0 + 16 * m + (e >> 1) * 8;
            bool hidden = key >= kv_lim || (a.causal && key > row + causal_off);
            if constexpr (Tr::kMasks) hidden = hidden || !((key_word >> j) & 1u);
            if (hidden) s[m][n][e] = -INFINITY;
          }
        }
      }
      if constexpr (Tr::kMasks) {
        switch (a.mask_type) {
          case MaskType::kNone: break;
          case MaskType::kBool: apply_general_mask<Tr, uint8_t>(a, s, batch, head, row0, kv_base, t); break;
          case MaskType::kFloat32: apply_general_mask<Tr, float>(a, s, batch, head, row0, kv_base, t); break;
          case MaskType::kFloat16: apply_general_mask<Tr, __half>(a, s, batch, head, row0, kv_base, t); break;
          case MaskType::kBFloat16:
            apply_general_mask<Tr, __nv_bfloat16>(a, s, batch, head, row0, kv_base, t);
            break;
        }
      }
    }

    // Online softmax. A fully masked block gives alpha = 1, p = 0 for a row with a finite max: the same as
    // skipping it (contract §5). A row with no visible key yet keeps m = -inf; masked blocks then take 0 as the
    // exponent reference, so alpha and every p are exactly 0 instead of exp2(-inf + inf) = NaN.
    float alpha[kM][2];
    bool rescale = false;
#pragma unroll
    for (int m = 0; m < kM; ++m) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float mx;
        // Tree reductions: four independent partial maxima / sums keep the dependency chains short (this loop
        // is latency-bound: two warps per scheduler).
        if constexpr (kIntMax) {
          int im[4];
#pragma unroll
          for (int i = 0; i < 4; ++i) im[i] = max(acc[m][i][2 * h], acc[m][i][2 * h + 1]);
#pragma unroll
          for (int n = 4; n < Tr::kSTiles; ++n) im[n % 4] = max(im[n % 4], max(acc[m][n][2 * h], acc[m][n][2 * h + 1]));
          mx = small_int_to_float(max(max(im[0], im[1]), max(im[2], im[3]))) * c;
        } else {
          float fm[4];
#pragma unroll
          for (int i = 0; i < 4; ++i) fm[i] = fmaxf(s[m][i][2 * h], s[m][i][2 * h + 1]);
#pragma unroll
          for (int n = 4; n < Tr::kSTiles; ++n) {
            fm[n % 4] = fmaxf(fm[n % 4], fmaxf(s[m][n][2 * h], s[m][n][2 * h + 1]));
          }
          mx = fmaxf(fmaxf(fm[0], fm[1]), fmaxf(fm[2], fm[3]));
        }
        mx = fmaxf(row_max[m][h], quad_max(mx));
        const float ref = kMasked && mx == -INFINITY ? 0.f : mx;
        alpha[m][h] = fast_exp2(row_max[m][h] - ref);
        rescale |= alpha[m][h] != 1.f;
        row_max[m][h] = mx;
        // FP8: exp2(t - m + log2(448)) = 448 p lands in the E4M3 range; l then sums 448 p and the 448 cancels.
        const float off = Tr::kFp8Pv ? ref - kLog2PRange : ref;
        // exp2((acc + B) * c - (B * c + off)) with B = 1.5*2^23: one FFMA per element instead of FADD + FFMA.
        // The rounding of the per-row constant scales all p of this row and block alike (by at most
        // 2^(0.5 ulp(B*c)), i.e. the integer dot moves by at most 0.375), which the softmax normalization
        // cancels except across blocks.
        const float bias_off = kBiasFold ? fmaf(12582912.0f, c, off) : off;
        float sum[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
        for (int n = 0; n < Tr::kSTiles; ++n) {
          s[m][n][2 * h] = fast_exp2(kIntMax ? fmaf(s[m][n][2 * h], c, -bias_off) : s[m][n][2 * h] - off);
          s[m][n][2 * h + 1] =
              fast_exp2(kIntMax ? fmaf(s[m][n][2 * h + 1], c, -bias_off) : s[m][n][2 * h + 1] - off);
          sum[n % 4] += s[m][n][2 * h] + s[m][n][2 * h + 1];
        }
        // per-lane partial sums; quad-reduced at the end
        row_sum[m][h] = row_sum[m][h] * alpha[m][h] + ((sum[0] + sum[1]) + (sum[2] + sum[3]));
      }
    }
    // Once the row maxima settle, alpha is exactly 1 for the whole warp: skip the O rescale.
    if (__any_sync(0xffffffffu, rescale)) {
#pragma unroll
      for (int m = 0; m < kM; ++m) {
#pragma unroll
        for (int n = 0; n < Tr::kOTiles; ++n) {
          o[m][n][0] *= alpha[m][0];
          o[m][n][1] *= alpha[m][0];
          o[m][n][2] *= alpha[m][1];
          o[m][n][3] *= alpha[m][1];
        }
      }
    }

    if constexpr (!Tr::kFp8Pv) {
      // FP16 P~: the S accumulator of n8 tiles 2kc, 2kc+1 (keys 2t,2t+1 and 8+2t,9+2t) is exactly the
      // m16n8k16 A fragment of the 16-key chunk kc.
      uint32_t pa[kM][Tr::kSTiles / 2][4];
#pragma unroll
      for (int m = 0; m < kM; ++m) {
#pragma unroll
        for (int kc = 0; kc < Tr::kSTiles / 2; ++kc) {
          pa[m][kc][0] = pack_half2(s[m][2 * kc][0], s[m][2 * kc][1]);
          pa[m][kc][1] = pack_half2(s[m][2 * kc][2], s[m][2 * kc][3]);
          pa[m][kc][2] = pack_half2(s[m][2 * kc + 1][0], s[m][2 * kc + 1][1]);
          pa[m][kc][3] = pack_half2(s[m][2 * kc + 1][2], s[m][2 * kc + 1][3]);
        }
      }
#pragma unroll
      for (int np = 0; np < Tr::kOTiles / 2; ++np) {
        uint32_t r[kM][2][2];  // fp16 accumulation: one 64-key block, then into fp32
#pragma unroll
        for (int m = 0; m < kM; ++m) r[m][0][0] = r[m][0][1] = r[m][1][0] = r[m][1][1] = 0u;
#pragma unroll
        for (int kc = 0; kc < Tr::kSTiles / 2; ++kc) {
          uint32_t b[4];  // transposed V: b0/b1 of channel tiles 2np and 2np+1 for keys 16kc..16kc+15
          ldmatrix_x4_trans(b, v_tile + kc * 16 * Tr::kVRowBytes + (v_lane_off ^ (np << 5)));
#pragma unroll
          for (int m = 0; m < kM; ++m) {
            if constexpr (Tr::kAccumF16) {
              mma_f16_m16n8k16_f16acc(r[m][0], pa[m][kc], b[0], b[1]);
              mma_f16_m16n8k16_f16acc(r[m][1], pa[m][kc], b[2], b[3]);
            } else {
              mma_f16_m16n8k16_f32acc(o[m][2 * np], pa[m][kc], b[0], b[1]);
              mma_f16_m16n8k16_f32acc(o[m][2 * np + 1], pa[m][kc], b[2], b[3]);
            }
          }
        }
        if constexpr (Tr::kAccumF16) {
#pragma unroll
          for (int m = 0; m < kM; ++m) {
#pragma unroll
            for (int i = 0; i < 2; ++i) {
              const float2 lo = unpack_half2(r[m][i][0]), hi = unpack_half2(r[m][i][1]);
              o[m][2 * np + i][0] += lo.x;
              o[m][2 * np + i][1] += lo.y;
              o[m][2 * np + i][2] += hi.x;
              o[m][2 * np + i][3] += hi.y;
            }
          }
        }
      }
    } else {
#if defined(SAGE_HAS_FP8_MMA)
      // FP8 P~: the m16n8k32 A fragment wants logical keys 4t..4t+3 per lane; this lane holds physical keys
      // 2t,2t+1 of two neighbouring n8 tiles. V's tokens are permuted in the workspace (within each 16-group:
      // 0,1,8,9,2,3,10,11,...) so that logical key 4t+u is exactly that physical key: no shuffles.
      uint32_t pa[kM][Tr::kSTiles / 4][4];
#pragma unroll
      for (int m = 0; m < kM; ++m) {
#pragma unroll
        for (int kc = 0; kc < Tr::kSTiles / 4; ++kc) {
          const float(*q4)[4] = &s[m][4 * kc];
          pa[m][kc][0] = pack_e4m3x4(q4[0][0], q4[0][1], q4[1][0], q4[1][1]);
          pa[m][kc][1] = pack_e4m3x4(q4[0][2], q4[0][3], q4[1][2], q4[1][3]);
          pa[m][kc][2] = pack_e4m3x4(q4[2][0], q4[2][1], q4[3][0], q4[3][1]);
          pa[m][kc][3] = pack_e4m3x4(q4[2][2], q4[2][3], q4[3][2], q4[3][3]);
        }
      }
#pragma unroll
      for (int np = 0; np < Tr::kOTiles / 2; ++np) {
        // Two-level accumulation: the narrow MMA accumulator (22-bit "fp32" or fp16) sums one 64-key block.
        float rf[kM][2][4];
        uint32_t rh[kM][2][2];
#pragma unroll
        for (int m = 0; m < kM; ++m) {
#pragma unroll
          for (int i = 0; i < 2; ++i) {
            rf[m][i][0] = rf[m][i][1] = rf[m][i][2] = rf[m][i][3] = 0.f;
            rh[m][i][0] = rh[m][i][1] = 0u;
          }
        }
#pragma unroll
        for (int kc = 0; kc < Tr::kSTiles / 4; ++kc) {
          uint32_t b[4];  // V^T rows = channels 16np.. and 16np+8..; chunks = logical keys 32kc.., 32kc+16..
          ldmatrix_x4(b, v_tile + np * 16 * Tr::kVRowBytes + (v_lane_off ^ (kc << 5)));
#pragma unroll
          for (int m = 0; m < kM; ++m) {
            if constexpr (Tr::kAccumF16) {
              mma_e4m3_m16n8k32_f16acc(rh[m][0], pa[m][kc], b[0], b[1]);
              mma_e4m3_m16n8k32_f16acc(rh[m][1], pa[m][kc], b[2], b[3]);
            } else {
              mma_e4m3_m16n8k32_f32acc(rf[m][0], pa[m][kc], b[0], b[1]);
              mma_e4m3_m16n8k32_f32acc(rf[m][1], pa[m][kc], b[2], b[3]);
            }
          }
        }
#pragma unroll
        for (int m = 0; m < kM; ++m) {
#pragma unroll
          for (int i = 0; i < 2; ++i) {
            if constexpr (Tr::kAccumF16) {
              const float2 lo = unpack_half2(rh[m][i][0]), hi = unpack_half2(rh[m][i][1]);
              rf[m][i][0] = lo.x, rf[m][i][1] = lo.y, rf[m][i][2] = hi.x, rf[m][i][3] = hi.y;
            }
#pragma unroll
            for (int e = 0; e < 4; ++e) o[m][2 * np + i][e] += rf[m][i][e];
          }
        }
      }
#endif
    }
  };

  // Blocks from first_masked on need the mask: the ragged end of the valid keys, and (causal) those crossing
  // the diagonal; the blocks before it are visible to every row of the tile (last key 64b+63 <= q0 + causal_off).
  int first_masked = min(n_blocks, kv_lim / Tr::kBlockK);
  if (a.causal) first_masked = min(first_masked, max(0, q0 + causal_off + 1) / Tr::kBlockK);
  using Yes = std::true_type;
  using No = std::false_type;
  if constexpr (Tr::kMasks) {
    // A block before first_masked with all 64 key bits set and no general mask runs the plain body; any other
    // block reads its bits (loaded one block ahead) or the mask.
    const uint64_t* bits =
        a.keys.bits != nullptr ? a.keys.bits + static_cast<int64_t>(batch) * a.keys.tiles : nullptr;
    const bool general = a.mask != nullptr;
    auto walk = [&](auto smooth_tag) {
      uint64_t next = bits != nullptr && n_blocks > 0 ? bits[0] : ~uint64_t{0};
      for (int blk = 0; blk < n_blocks; ++blk) {
        const uint64_t word = next;
        if (bits != nullptr && blk + 1 < n_blocks) next = bits[blk + 1];
        if (!general && blk < first_masked && word == ~uint64_t{0}) {
          step(blk, No{}, smooth_tag, word);
        } else {
          step(blk, Yes{}, smooth_tag, word);
        }
      }
    };
    if (a.smooth_q) {
      walk(Yes{});
    } else {
      walk(No{});
    }
  } else if (a.smooth_q) {
    for (int blk = 0; blk < first_masked; ++blk) step(blk, No{}, Yes{}, 0);
    for (int blk = first_masked; blk < n_blocks; ++blk) step(blk, Yes{}, Yes{}, 0);
  } else {
    for (int blk = 0; blk < first_masked; ++blk) step(blk, No{}, No{}, 0);
    for (int blk = first_masked; blk < n_blocks; ++blk) step(blk, Yes{}, No{}, 0);
  }

  // Epilogue (contract §7): O * (1/l), times dV for FP8 (whose 448 cancelled against l), rounded to T. A row
  // without any visible key has l = 0 and O = 0 and outputs 0.
  float inv[kM][2];
#pragma unroll
  for (int m = 0; m < kM; ++m) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float l = quad_sum(row_sum[m][h]);
      inv[m][h] = l > 0.f ? 1.f / l : 0.f;
    }
  }
  const float* v_scale = Tr::kFp8Pv ? a.v_scales + bkv * Tr::kHeadDim : nullptr;
  switch (a.out_dtype) {
    case 0: store_output<Tr, float>(a, o, batch, head, row0, t, inv, v_scale); break;
    case 1: store_output<Tr, __half>(a, o, batch, head, row0, t, inv, v_scale); break;
    default: store_output<Tr, __nv_bfloat16>(a, o, batch, head, row0, t, inv, v_scale); break;
  }
}

}  // namespace attention_detail

template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, Tr::kMinCtasPerSm) sage_attention_kernel(const __grid_constant__ AttentionArgs args) {
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ < 890)
  // No FP8 MMA before sm_89: the FP8 kernels are built as stubs there and the runner never launches them.
  if constexpr (Tr::kFp8Pv) {
    __trap();
  } else
#endif
  {
    attention_detail::attention_body<Tr>(args);
  }
}

}  // namespace sage::cuda
