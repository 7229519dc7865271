// Which Q/K tokens share one quantization scale (docs/OP_CONTRACT.md §2), and the tile constants that
// define them. Host and device code use these same functions, so every implementation agrees.
#pragma once
#include <cstdint>

#include "op_schema.gen.h"

#if defined(__CUDACC__)
#define SAGE_HD __host__ __device__ __forceinline__
#else
#define SAGE_HD inline
#endif

namespace sage {

inline constexpr int kBlockQ = 128;  // query tokens of one CTA tile / one smooth_q block
inline constexpr int kWarpQ = 32;    // query tokens of one warp slice
inline constexpr int kBlockK = 64;   // keys of one KV block (online-softmax step)
inline constexpr int kQGroupsPerWarpThread = 8;   // per_thread: tokens i % 8 within a warp slice
inline constexpr int kKGroupsPerBlockThread = 4;  // per_thread: (j % 8) / 2 within a KV block

SAGE_HD int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

SAGE_HD int64_t q_group_of(int64_t token, schema::QkGranularity g) {
  switch (g) {
    case schema::QkGranularity::kPerBlock: return token / kBlockQ;
    case schema::QkGranularity::kPerWarp: return token / kWarpQ;
    default: return (token / kWarpQ) * kQGroupsPerWarpThread + token % 8;
  }
}

SAGE_HD int64_t k_group_of(int64_t token, schema::QkGranularity g) {
  if (g == schema::QkGranularity::kPerThread) return (token / kBlockK) * kKGroupsPerBlockThread + (token % 8) / 2;
  return token / kBlockK;
}

// Number of scale slots per (batch, head); some slots of a ragged last tile may stay unused.
SAGE_HD int64_t q_groups(int64_t len, schema::QkGranularity g) {
  switch (g) {
    case schema::QkGranularity::kPerBlock: return ceil_div(len, kBlockQ);
    case schema::QkGranularity::kPerWarp: return ceil_div(len, kWarpQ);
    default: return ceil_div(len, kWarpQ) * kQGroupsPerWarpThread;
  }
}

SAGE_HD int64_t k_groups(int64_t len, schema::QkGranularity g) {
  if (g == schema::QkGranularity::kPerThread) return ceil_div(len, kBlockK) * kKGroupsPerBlockThread;
  return ceil_div(len, kBlockK);
}

SAGE_HD int qmax_of(schema::QkQuant q) { return q == schema::QkQuant::kInt4 ? 7 : 127; }

// P~ and V ranges of the FP8 P~.V (docs/OP_CONTRACT.md §6).
inline constexpr float kPRange = 448.f;
SAGE_HD float v_range_of(schema::PvAccum acc) { return acc == schema::PvAccum::kFp16 ? 2.25f : 448.f; }

}  // namespace sage
