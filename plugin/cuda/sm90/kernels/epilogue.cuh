// Epilogue of a consumer warpgroup: O / l * deltaV (docs/OP_CONTRACT.md §7; the 1/Pr cancels against the
// 448-scaled row sum, softmax.cuh), rounded to the output type and stored straight from registers.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "../device/ptx_sm90.cuh"
#include "kernel_params.h"
#include "softmax.cuh"

namespace sage::sm90 {

template <typename OutT>
struct OutputCast;

template <>
struct OutputCast<float> {
  static __device__ __forceinline__ void one(float* p, float x) { *p = x; }
  static __device__ __forceinline__ void two(float* p, float x, float y) { *reinterpret_cast<float2*>(p) = make_float2(x, y); }
  static __device__ __forceinline__ void stage(uint32_t addr, float x, float y) {
    st_shared_v2_b32(addr, __float_as_uint(x), __float_as_uint(y));
  }
};

template <>
struct OutputCast<__half> {
  static __device__ __forceinline__ void one(__half* p, float x) { *p = __float2half_rn(x); }
  static __device__ __forceinline__ void two(__half* p, float x, float y) {
    *reinterpret_cast<__half2*>(p) = __halves2half2(__float2half_rn(x), __float2half_rn(y));
  }
  static __device__ __forceinline__ void stage(uint32_t addr, float x, float y) {
    const __half2 v = __halves2half2(__float2half_rn(x), __float2half_rn(y));
    st_shared_b32(addr, *reinterpret_cast<const uint32_t*>(&v));
  }
};

template <>
struct OutputCast<__nv_bfloat16> {
  static __device__ __forceinline__ void one(__nv_bfloat16* p, float x) { *p = __float2bfloat16_rn(x); }
  static __device__ __forceinline__ void two(__nv_bfloat16* p, float x, float y) {
    *reinterpret_cast<__nv_bfloat162*>(p) = __halves2bfloat162(__float2bfloat16_rn(x), __float2bfloat16_rn(y));
  }
  static __device__ __forceinline__ void stage(uint32_t addr, float x, float y) {
    const __nv_bfloat162 v = __halves2bfloat162(__float2bfloat16_rn(x), __float2bfloat16_rn(y));
    st_shared_b32(addr, *reinterpret_cast<const uint32_t*>(&v));
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
// dv: load_v_scales. stage: this warp's out_stage buffer (Tr::kStageWarpBytes), used when p.out_rows16.
//
// Rows that are whole 16-byte units (out_rows16) go through the warp's staging buffer: the accumulator pairs are
// written there, then every lane stores 16-byte pieces, so a warp instruction writes whole rows (two at D = 128,
// fp16) instead of 16-byte pieces of eight rows, and the warp issues a quarter of the stores. Inside a row the
// 16-byte chunks are XOR-swizzled by the row's low three bits, which keeps both the pair writes (eight rows at
// once) and the 16-byte reads (eight chunks of one row) free of bank conflicts.
// kStaged = false leaves the staged path out (the general-mask kernels: its code costs them spills).
template <typename OutT, int kHeadDim, bool kStaged = true>
__device__ __forceinline__ void store_output(const float (&o)[kHeadDim / 2], const RowState& st,
                                             const AttnKernelParams& p, int b, int h, int row0, int lane,
                                             const float2 (&dv)[kHeadDim / 8], uint8_t* stage) {
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
  if (kStaged && p.out_rows16) {
    constexpr int kRowBytes = kHeadDim * static_cast<int>(sizeof(OutT));
    constexpr int kChunks = kRowBytes / 16;  // 8 .. 32: the swizzle below stays inside the row
    const int rs = lane >> 2;                // rows rs and rs + 8 of the warp's 16
    const uint32_t stage_at = smem_u32(stage);
#pragma unroll
    for (int n = 0; n < kHeadDim / 8; ++n) {
      const int byte = (8 * n + 2 * t) * static_cast<int>(sizeof(OutT));
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int row = rs + 8 * r;
        OutputCast<OutT>::stage(stage_at + row * kRowBytes + (((byte >> 4) ^ (row & 7)) << 4) + (byte & 15),
                                o[4 * n + 2 * r] * inv[r] * dv[n].x, o[4 * n + 2 * r + 1] * inv[r] * dv[n].y);
      }
    }
    __syncwarp();
    const int warp_row0 = row0 - rs;
    const int row_chunks = p.head_dim * static_cast<int>(sizeof(OutT)) / 16;  // padded columns are not stored
#pragma unroll
    for (int i = 0; i < 16 * kChunks / 32; ++i) {
      const int idx = 32 * i + lane;
      const int row = idx / kChunks;
      const int c = idx % kChunks;
      if (warp_row0 + row < p.q_len && c < row_chunks) {
        const uint4 v = ld_shared_v4_b32(stage_at + row * kRowBytes + ((c ^ (row & 7)) << 4));
        st_global_v4_b32(reinterpret_cast<uint8_t*>(base + static_cast<int64_t>(warp_row0 + row) * p.out_token_stride) +
                             16 * c,
                         v);
      }
    }
    __syncwarp();  // the next tile's epilogue rewrites the buffer
    return;
  }
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
