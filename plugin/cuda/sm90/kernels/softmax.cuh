// Online softmax of one 64-key contract block (docs/OP_CONTRACT.md §5) on the int32 Q.K^T accumulator of
// an m64n64 wgmma, producing the FP8 P~ operand of the P~.V wgmma directly in registers.
//
// Accumulator layout (m64nN, per thread): warp w, lane l own rows r0 = 16w + l/4 and r0 + 8; register
// s[4n + e] of 8-column chunk n is (row r0 + 8*(e>>1), column 8n + 2*(l%4) + (e&1)).
//
// Numerics follow the contract per 64-key block: the row max is updated once per block, p is exp2 of the
// base-2 logit minus that max, the row sum takes p before quantization, and O is rescaled before the
// block's R is added. Two folds keep the inner loop short:
//  * scale: a thread's logits in one block share one Q scale and one K scale for every granularity
//    (quant_groups.h), so t = s * sc with sc = deltaQ*sigma*log2e * deltaK, and the row max of t is
//    sc * max(s) (sc >= 0): the max runs on integers.
//  * Pr = 448: p~ = exp2(t - (m - log2 448)) lands in [0, 448] and is converted to e4m3 as is; the row
//    sum then also carries the factor 448, which cancels in O / l (the epilogue omits the "/ Pr").
#pragma once
#include <cstdint>

#include "../device/ptx_sm90.cuh"

namespace sage::sm90 {

inline constexpr float kLog2PRange = 8.80735492205760410744f;  // log2(448)

// int32 score -> float, exactly (|s| < 2^21 < 2^24). The native I2FP costs one issue slot; measured no slower
// than the two-op mantissa trick (exact_i2f) and 7% faster at D = 64 (docs/HOPPER_KERNEL.md).
__device__ __forceinline__ float score_to_float(int32_t s) { return __int2float_rn(s); }

// Running max and (448-scaled) row sum of the two rows this thread owns.
struct RowState {
  float m[2];
  float l[2];
};

__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

// One block: accumulator chunks 0..7 (keys 8n .. 8n+7 of the block).
// kMasked: some keys of the block may be beyond kv_len or (causal) after the row; masked keys get
// logit -inf and take no part in the max (a row whose block is fully masked keeps m, alpha = 1, p = 0).
// key_lane: key index of this thread's first column in the block (block start + 2*(l%4)).
// pf[ks]: the A operand (m64 x k32, e4m3) of the block's ks-th k32 slice; V^T is stored with its tokens
// permuted to match (prepass.cuh), so no shuffles are needed.
template <bool kMasked, bool kCausal>
__device__ __forceinline__ void softmax_block(const int32_t (&s)[32], float sc, RowState& st, float (&alpha)[2],
                                              uint32_t (&pf)[2][4], int key_lane, int row0, int kv_len) {
  float p[32];  // p[4n + e]
  float mx[2];
  if constexpr (!kMasked) {
    int32_t im[2] = {s[0], s[2]};
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      im[0] = max(im[0], max(s[4 * n], s[4 * n + 1]));
      im[1] = max(im[1], max(s[4 * n + 2], s[4 * n + 3]));
    }
    mx[0] = score_to_float(im[0]) * sc;
    mx[1] = score_to_float(im[1]) * sc;
  } else {
    mx[0] = mx[1] = -INFINITY;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key_lane + 8 * n + (e & 1);
        const int row = row0 + 8 * (e >> 1);
        const bool dead = key >= kv_len || (kCausal && key > row);
        const float t = dead ? -INFINITY : score_to_float(s[4 * n + e]) * sc;
        p[4 * n + e] = t;
        mx[e >> 1] = fmaxf(mx[e >> 1], t);
      }
    }
  }
  float base[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float m_new = fmaxf(st.m[r], quad_max(mx[r]));
    // Only a masked block can leave the max at -inf; subtracting 0 then keeps exp2 away from NaN.
    const float m_use = (kMasked && m_new == -INFINITY) ? 0.f : m_new;
    alpha[r] = fast_exp2(st.m[r] - m_use);  // 0 while m was -inf
    base[r] = m_use - kLog2PRange;
    st.m[r] = m_new;
  }
#pragma unroll
  for (int i = 0; i < 32; ++i) {
    if constexpr (kMasked) {
      p[i] = fast_exp2(p[i] - base[(i >> 1) & 1]);
    } else {
      const float x = fmaf(score_to_float(s[i]), sc, -base[(i >> 1) & 1]);
      p[i] = fast_exp2(x);
    }
  }
  // Row sums as four interleaved partial sums per row: a serial chain of 16 dependent adds would sit on
  // the softmax's critical path.
  float part[2][4];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
#pragma unroll
    for (int j = 0; j < 4; ++j) part[r][j] = p[8 * j + 2 * r] + p[8 * j + 2 * r + 1];
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
#pragma unroll
    for (int j = 0; j < 4; ++j) part[r][j] += p[8 * j + 4 + 2 * r] + p[8 * j + 4 + 2 * r + 1];
  }
  float sum[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) sum[r] = (part[r][0] + part[r][1]) + (part[r][2] + part[r][3]);
#pragma unroll
  for (int r = 0; r < 2; ++r) st.l[r] = fmaf(alpha[r], st.l[r], sum[r]);
  // A fragment of an m64k32 8-bit wgmma: reg 0 = (row r0, k 4t..4t+3), reg 1 = (r0+8, same k),
  // reg 2 = (r0, k 16+4t..), reg 3 = (r0+8, k 16+4t..). Chunks n and n+1 give k 4t.. , n+2 and n+3 give 16+4t..
#pragma unroll
  for (int ks = 0; ks < 2; ++ks) {
    const int c = 16 * ks;  // p index of chunk 4*ks
    pf[ks][0] = pack_e4m3x4(p[c + 0], p[c + 1], p[c + 4], p[c + 5]);
    pf[ks][1] = pack_e4m3x4(p[c + 2], p[c + 3], p[c + 6], p[c + 7]);
    pf[ks][2] = pack_e4m3x4(p[c + 8], p[c + 9], p[c + 12], p[c + 13]);
    pf[ks][3] = pack_e4m3x4(p[c + 10], p[c + 11], p[c + 14], p[c + 15]);
  }
}

}  // namespace sage::sm90
