// The softmax of the blocks an attn_mask touches, for the masked attention kernels (attention_masked.cuh;
// docs/OP_CONTRACT.md "Masks"). The unmasked kernels instantiate BlockMasks<MaskKind::kNone, D>, which does
// nothing, so their code is that of softmax.cuh alone.
//
//   kKeys    key_lengths and/or a bool key-padding mask. The kernel entry has already cut the key loop at the
//            batch's end (batch_view); a key-padding mask's 64-bit word per 64-key block (the key-validity pass,
//            plugin/cuda/preprocess/key_validity.cu) is read one block ahead, and only blocks with a hole take
//            softmax_block_keys. Full blocks run softmax_block unchanged.
//   kGeneral a bool mask that is not key padding, or an additive one (any broadcast 4-D form): every block
//            reads the mask for its 64 keys x this thread's two rows (mask_logits), then the same softmax:
//            t = s * sc + log2(e) * mask (bool: 0 / -inf), the contract's units (t is base 2).
//
// Masked pairs get t = -inf; the online softmax then follows softmax_block's masked path exactly (a row
// without any visible key keeps m = -inf, alpha = p = 0, l = 0, and the epilogue writes 0 for it).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "../device/ptx_sm90.cuh"
#include "kernel_params.h"
#include "softmax.cuh"

namespace sage::sm90 {

// kLengths: key_lengths alone. The batch's key end is its only mask, so the blocks take softmax.cuh's paths
// exactly as in the unmasked kernel (the primary BlockMasks, which does nothing); a runtime "no bits" test
// per block in the kKeys kernel measured 15% slower at D = 128, N = 8K.
enum class MaskKind : int { kNone = 0, kKeys = 1, kGeneral = 2, kLengths = 3 };

inline constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ void prefetch_l1(const void* ptr) {
#if SAGE_SM90_DEVICE
  asm volatile("prefetch.global.L1 [%0];\n" ::"l"(ptr));
#else
  (void)ptr;
#endif
}

// (The pieces below mirror softmax_block's masked path on purpose: sharing one implementation made the
// unmasked kernel 7-9% slower, docs/HOPPER_KERNEL.md ledger step 17.)
// Online softmax of one 64-key block from its base-2 logits t (masked pairs -inf; t is overwritten with P~) and
// this thread's maxima of t per row: the numerics of softmax_block's masked path.
__device__ __forceinline__ void softmax_from_logits(float (&t)[32], const float (&mx)[2], RowState& st,
                                                    float (&alpha)[2], uint32_t (&pf)[2][4]) {
  float base[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float m_new = fmaxf(st.m[r], quad_max(mx[r]));
    // A row without a visible key so far keeps m = -inf: subtracting 0 then keeps exp2 away from NaN.
    const float m_use = m_new == -INFINITY ? 0.f : m_new;
    alpha[r] = fast_exp2(st.m[r] - m_use);  // 0 while m was -inf
    base[r] = m_use - kLog2PRange;
    st.m[r] = m_new;
  }
  float sum[2] = {0.f, 0.f};
#pragma unroll
  for (int i = 0; i < 32; ++i) {
    t[i] = fast_exp2(t[i] - base[(i >> 1) & 1]);
    sum[(i >> 1) & 1] += t[i];
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) st.l[r] = alpha[r] * st.l[r] + sum[r];
  // The A fragments of the block's two k32 slices, as in softmax_block.
#pragma unroll
  for (int ks = 0; ks < 2; ++ks) {
    const int c = 16 * ks;
    pf[ks][0] = pack_e4m3x4(t[c + 0], t[c + 1], t[c + 4], t[c + 5]);
    pf[ks][1] = pack_e4m3x4(t[c + 2], t[c + 3], t[c + 6], t[c + 7]);
    pf[ks][2] = pack_e4m3x4(t[c + 8], t[c + 9], t[c + 12], t[c + 13]);
    pf[ks][3] = pack_e4m3x4(t[c + 10], t[c + 11], t[c + 14], t[c + 15]);
  }
}

// A block with a hole of the key-padding mask (or the batch's last valid key). `valid`: the block's key bits
// shifted so that bit 8n + e is this thread's key key_lane + 8n + e (bits past the batch's end are 0, so the
// end needs no test of its own). row0: the thread's first row, shifted by the causal offset.
template <bool kCausal>
__device__ __forceinline__ void softmax_block_keys(const int32_t (&s)[32], float sc, RowState& st, float (&alpha)[2],
                                                   uint32_t (&pf)[2][4], uint64_t valid, int key_lane, int row0) {
  float t[32];
  float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int n = 0; n < 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int key = key_lane + 8 * n + (e & 1);
      const int row = row0 + 8 * (e >> 1);
      const bool dead = ((valid >> (8 * n + (e & 1))) & 1u) == 0 || (kCausal && key > row);
      t[4 * n + e] = dead ? -INFINITY : score_to_float(s[4 * n + e]) * sc;
      mx[e >> 1] = fmaxf(mx[e >> 1], t[4 * n + e]);
    }
  }
  softmax_from_logits(t, mx, st, alpha, pf);
}

// ---- general masks -----------------------------------------------------------------------------------
// One element of a general mask as a base-2 logit bias: log2(e) * mask (additive), 0 / -inf (bool).
template <typename M>
__device__ __forceinline__ float mask_bias(M x) {
  if constexpr (std::is_same_v<M, uint8_t>) {
    return x != 0 ? 0.f : -INFINITY;
  } else if constexpr (std::is_same_v<M, float>) {
    return kLog2e * x;
  } else if constexpr (std::is_same_v<M, __half>) {
    return kLog2e * __half2float(x);
  } else {
    return kLog2e * __bfloat162float(x);
  }
}

// The mask elements of two neighbouring keys.
template <typename M>
struct alignas(2 * sizeof(M)) MaskPair {
  M v[2];
};

// kN pairs of one mask row: keys key_lane + 8n, + 1 for n = n0 .. n0 + kN - 1. `full` (a block wholly before
// the batch's key end, pair-aligned rows): one aligned load per pair from one base address; otherwise (the
// ragged end, odd strides) elements are loaded one by one and keys at or past kv_len are not read (their
// logits are -inf whatever the mask says).
template <typename M, int kN>
__device__ __forceinline__ void load_mask_pairs(const M* row, int key_lane, int n0, int kv_len, bool full,
                                                MaskPair<M> (&raw)[kN]) {
  if (full) {
    const MaskPair<M>* base = reinterpret_cast<const MaskPair<M>*>(row + key_lane);
#pragma unroll
    for (int n = 0; n < kN; ++n) raw[n] = base[4 * (n0 + n)];  // pair index (key_lane + 8n) / 2 - key_lane / 2
  } else {
#pragma unroll
    for (int n = 0; n < kN; ++n) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int key = key_lane + 8 * (n0 + n) + e;
        raw[n].v[e] = key < kv_len ? row[key] : M{};
      }
    }
  }
}

// The logits of a block under a general mask: t = s * sc + bias, -inf past the batch's key end (kv_len) and
// (causal) after the row. Element (4n + e): row r0 + 8 * (e >> 1), key key_lane + 8n + (e & 1).
// Register budget: the unmasked consumer already uses nearly all of its setmaxnreg registers (160 at D = 64,
// 240 at D = 128), so a row is read kPairsPerLoad pairs at a time (after the L1 prefetch of the previous
// block): 2 at D = 64, 8 (the whole row) at D = 128, the groupings that left ptxas the fewest spills.
template <bool kCausal, int kPairsPerLoad, typename M>
__device__ __forceinline__ void mask_logits(const int32_t (&s)[32], float sc, const uint8_t* const (&rows)[2],
                                            bool pairs, int key_lane, int row0, int kv_len, float (&t)[32]) {
  constexpr int kGroup = kPairsPerLoad;
  const bool full = pairs && (key_lane | 63) < kv_len;  // every key of the block is before the end
#pragma unroll
  for (int r = 0; r < 2; ++r) {
#pragma unroll
    for (int n0 = 0; n0 < 8; n0 += kGroup) {
      MaskPair<M> raw[kGroup];
      load_mask_pairs<M, kGroup>(reinterpret_cast<const M*>(rows[r]), key_lane, n0, kv_len, full, raw);
#pragma unroll
      for (int n = n0; n < n0 + kGroup; ++n) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int i = 4 * n + 2 * r + e;
          const int key = key_lane + 8 * n + e;
          const bool dead = key >= kv_len || (kCausal && key > row0 + 8 * r);
          t[i] = dead ? -INFINITY : score_to_float(s[i]) * sc + mask_bias<M>(raw[n - n0].v[e]);
        }
      }
    }
  }
}

// ---- per-thread mask state of a consumer warpgroup ---------------------------------------------------
// softmax<kCausal>(blk, ...) is called once per 64-key block, in order, from consume()'s softmax: it runs the
// block's softmax and returns true when the mask touches the block, else returns false and the block takes
// softmax_block (masked there only by the batch's key end and the causal diagonal). row0: the thread's first
// row shifted by the causal offset (what the causal test compares keys with); kv_len: the batch's key end.
template <MaskKind kMask, int kHeadDim>
struct BlockMasks {
  __device__ __forceinline__ BlockMasks(const AttnKernelParams&, const AttnMaskParams*, int, int, int) {}
  template <bool kCausal>
  __device__ __forceinline__ bool softmax(int, int, const int32_t (&)[32], float, RowState&, float (&)[2],
                                          uint32_t (&)[2][4], int, int, int) {
    return false;
  }
};

template <int kHeadDim>
struct BlockMasks<MaskKind::kKeys, kHeadDim> {
  // The tile's batch's words (null: key_lengths alone); the rest of the mask's description stays in
  // kernel-parameter space, as the unmasked consumer already uses nearly all of its register budget.
  const uint64_t* bits;
  uint64_t next;  // the word of the next block to go through the softmax, loaded one block ahead

  __device__ __forceinline__ BlockMasks(const AttnKernelParams&, const AttnMaskParams* mp, int b, int, int)
      : bits(mp->keys.bits != nullptr ? mp->keys.bits + static_cast<int64_t>(b) * mp->keys.tiles : nullptr),
        next(bits != nullptr ? bits[0] : ~uint64_t{0}) {}

  template <bool kCausal>
  __device__ __forceinline__ bool softmax(int blk, int n_blocks, const int32_t (&s)[32], float sc, RowState& st,
                                          float (&alpha)[2], uint32_t (&pf)[2][4], int key_lane, int row0, int) {
    if (bits == nullptr) return false;  // key_lengths alone: the batch's key end is the only mask
    const uint64_t word = next;
    next = blk + 1 < n_blocks ? bits[blk + 1] : ~uint64_t{0};
    if (word == ~uint64_t{0}) return false;  // every key of the block is valid
    softmax_block_keys<kCausal>(s, sc, st, alpha, pf, word >> (key_lane & 63), key_lane, row0);
    return true;
  }
};

template <int kHeadDim>
struct BlockMasks<MaskKind::kGeneral, kHeadDim> {
  // Few registers live across the loop (the unmasked consumer already uses nearly all of its budget): the
  // mask's description stays in kernel-parameter space (m); kept are the tile's (batch, q head) and the thread's
  // two row indices (rows past q_len read the last row, whose outputs are never stored).
  const AttnMaskParams* m;
  int b, h;
  int rows_i[2];

  __device__ __forceinline__ BlockMasks(const AttnKernelParams& p, const AttnMaskParams* mp, int batch, int head,
                                        int row0)
      : m(mp), b(batch), h(head), rows_i{min(row0, p.q_len - 1), min(row0 + 8, p.q_len - 1)} {}

  __device__ __forceinline__ int64_t elem_bytes() const {
    return m->mask_type == static_cast<int>(MaskType::kBool) ? 1 : m->mask_type == static_cast<int>(MaskType::kFloat32) ? 4 : 2;
  }

  template <bool kCausal>
  __device__ __forceinline__ bool softmax(int blk, int n_blocks, const int32_t (&s)[32], float sc, RowState& st,
                                          float (&alpha)[2], uint32_t (&pf)[2][4], int key_lane, int row0,
                                          int kv_len) {
    const int64_t es = elem_bytes();
    const uint8_t* base = static_cast<const uint8_t*>(m->mask) +
                          (static_cast<int64_t>(b) * m->mask_stride_b + static_cast<int64_t>(h) * m->mask_stride_h) * es;
    const uint8_t* rows[2] = {base + rows_i[0] * m->mask_stride_q * es, base + rows_i[1] * m->mask_stride_q * es};
    // The next block's mask lines into L1 while this block's softmax runs (keys 32 apart: a 64-key row
    // segment is at most two 128-byte lines).
    if (blk + 1 < n_blocks) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int key = key_lane + 64 + 32 * half;
        if (key < kv_len) {
          prefetch_l1(rows[0] + key * es);
          prefetch_l1(rows[1] + key * es);
        }
      }
    }
    const bool pairs = m->mask_pairs != 0;
    constexpr int kPairs = kHeadDim == 64 ? 2 : 8;
    float t[32];
    switch (static_cast<MaskType>(m->mask_type)) {
      case MaskType::kBool: mask_logits<kCausal, kPairs, uint8_t>(s, sc, rows, pairs, key_lane, row0, kv_len, t); break;
      case MaskType::kFloat32: mask_logits<kCausal, kPairs, float>(s, sc, rows, pairs, key_lane, row0, kv_len, t); break;
      case MaskType::kFloat16: mask_logits<kCausal, kPairs, __half>(s, sc, rows, pairs, key_lane, row0, kv_len, t); break;
      default: mask_logits<kCausal, kPairs, __nv_bfloat16>(s, sc, rows, pairs, key_lane, row0, kv_len, t); break;
    }
    float mx[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = -INFINITY;
#pragma unroll
      for (int n = 0; n < 8; ++n) mx[r] = fmaxf(mx[r], fmaxf(t[4 * n + 2 * r], t[4 * n + 2 * r + 1]));
    }
    softmax_from_logits(t, mx, st, alpha, pf);
    return true;
  }
};

}  // namespace sage::sm90
