// Epilogue of a consumer warpgroup: O / l * deltaV (docs/OP_CONTRACT.md §7; the 1/Pr cancels against the
// 448-scaled row sum, softmax.cuh), rounded to the output type and stored straight from registers.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernel_params.h"
#include "softmax.cuh"

namespace sage::sm90 {

template <typename OutT>
struct OutputCast;

template <>
struct OutputCast<float> {
  static __device__ __forceinline__ void one(float* p, float x) { *p = x; }
  static __device__ __forceinline__ void two(float* p, float x, float y) { *reinterpret_cast<float2*>(p) = make_float2(x, y); }
};

template <>
struct OutputCast<__half> {
  static __device__ __forceinline__ void one(__half* p, float x) { *p = __float2half_rn(x); }
  static __device__ __forceinline__ void two(__half* p, float x, float y) {
    *reinterpret_cast<__half2*>(p) = __halves2half2(__float2half_rn(x), __float2half_rn(y));
  }
};

template <>
struct OutputCast<__nv_bfloat16> {
  static __device__ __forceinline__ void one(__nv_bfloat16* p, float x) { *p = __float2bfloat16_rn(x); }
  static __device__ __forceinline__ void two(__nv_bfloat16* p, float x, float y) {
    *reinterpret_cast<__nv_bfloat162*>(p) = __halves2bfloat162(__float2bfloat16_rn(x), __float2bfloat16_rn(y));
  }
};

// deltaV of the thread's output columns 8n + 2(l%4) and the next, one 8-byte load per pair (v_scale holds the
// padded head dim for every head, so each pair is in bounds). The caller issues these before the tile's last P~.V
// wait: loads written between the output stores cannot move above them (the stores might alias), which put
// sixteen dependent L2 round trips into every tile's epilogue (37% of the kernel's stall samples at N = 1K).
template <int kHeadDim>
__device__ __forceinline__ void load_v_scales(const AttnKernelParams& p, int bhk, int lane,
                                              float2 (&dv)[kHeadDim / 8]) {
  const float2* src = reinterpret_cast<const float2*>(p.v_scale + static_cast<int64_t>(bhk) * kHeadDim) + (lane & 3);
#pragma unroll
  for (int n = 0; n < kHeadDim / 8; ++n) dv[n] = __ldg(src + 4 * n);
}

// o: the thread's m64 x Dp accumulator registers (o[4n+e]: row r0 + 8*(e>>1), column 8n + 2*(l%4) + (e&1));
// dv: load_v_scales.
template <typename OutT, int kHeadDim>
__device__ __forceinline__ void store_output(const float (&o)[kHeadDim / 2], const RowState& st,
                                             const AttnKernelParams& p, int b, int h, int row0, int lane,
                                             const float2 (&dv)[kHeadDim / 8]) {
  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = st.l[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);  // the four lanes of a quad hold disjoint columns of the row
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    inv[r] = l > 0.f ? 1.f / l : 0.f;  // a row with no visible key outputs 0 (docs/OP_CONTRACT.md, Masks)
  }
  OutT* base = static_cast<OutT*>(p.out) + b * p.out_batch_stride + h * p.out_head_stride;
  const int t = lane & 3;
#pragma unroll
  for (int n = 0; n < kHeadDim / 8; ++n) {
    const int col = 8 * n + 2 * t;
    if (col >= p.head_dim) continue;
    const float dv0 = dv[n].x;
    const float dv1 = dv[n].y;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = row0 + 8 * r;
      if (row >= p.q_len) continue;
      const float y0 = o[4 * n + 2 * r] * inv[r] * dv0;
      const float y1 = o[4 * n + 2 * r + 1] * inv[r] * dv1;
      OutT* dst = base + static_cast<int64_t>(row) * p.out_token_stride + col;
      if (col + 1 < p.head_dim) {
        if (p.out_pairs) {
          OutputCast<OutT>::two(dst, y0, y1);
        } else {
          OutputCast<OutT>::one(dst, y0);
          OutputCast<OutT>::one(dst + 1, y1);
        }
      } else {
        OutputCast<OutT>::one(dst, y0);
      }
    }
  }
}

}  // namespace sage::sm90
