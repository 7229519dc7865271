// Tile configuration of the mma.sync attention kernel. One CTA = 128 query rows (kBlockQ) x 64-key blocks
// (kBlockK), 8 warps of 16 rows: with 16 rows a warp keeps its Q fragments, S tile and O accumulators in
// registers (~150 at head_dim 128) without spilling, which 32-row warps cannot. Host-safe.
#pragma once

// CTAs per SM the register allocation is capped for. 1 lets the compiler keep everything in registers
// (~210-250 at head_dim 128, no spills); 2 caps it at 128 registers (a few spills) for twice the warps per SM.
#ifndef SAGE_ATTENTION_MIN_CTAS
#define SAGE_ATTENTION_MIN_CTAS 1
#endif

namespace sage::cuda {

template <int kHeadDim_, bool kInt4_, bool kFp8Pv_, bool kAccumF16_>
struct AttentionTraits {
  static constexpr int kHeadDim = kHeadDim_;  // padded head dim: 64 or 128
  static constexpr bool kInt4 = kInt4_;       // Q.K^T with m16n8k64 s4 instead of m16n8k32 s8
  static constexpr bool kFp8Pv = kFp8Pv_;     // P~.V with m16n8k32 e4m3 (sm_89+) instead of m16n8k16 f16
  static constexpr bool kAccumF16 = kAccumF16_;  // per-block P~.V accumulates in fp16, then into fp32

  static constexpr int kWarps = 8;
  static constexpr int kMinCtasPerSm = SAGE_ATTENTION_MIN_CTAS;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kBlockQ = 128;
  static constexpr int kBlockK = 64;
  static constexpr int kWarpRows = kBlockQ / kWarps;  // 16: one m16 MMA tile per warp
  static_assert(kWarpRows == 16, "the fragment code assumes one m16 tile per warp");

  static constexpr int kQkRowBytes = kInt4 ? kHeadDim / 2 : kHeadDim;  // bytes of one Q/K code row
  static constexpr int kQkSteps = kQkRowBytes / 32;                    // MMA k-steps: 32 bytes each
  static constexpr int kSTiles = kBlockK / 8;                          // n8 tiles of the S block
  static constexpr int kOTiles = kHeadDim / 8;                         // n8 tiles of the O rows

  static constexpr int kKTileBytes = kBlockK * kQkRowBytes;
  static constexpr int kVRowBytes = kFp8Pv ? kBlockK : kHeadDim * 2;  // fp8: channel rows; fp16: token rows
  static constexpr int kVTileBytes = kFp8Pv ? kHeadDim * kBlockK : kBlockK * kHeadDim * 2;
  static constexpr int kStageBytes = kKTileBytes + kVTileBytes;
  static constexpr int kStages = 2;  // K/V double buffering; block j+1 loads during block j
  static constexpr int kQTileBytes = kBlockQ * kQkRowBytes;
  // The Q tile is staged in stage 1, which is free until the first main-loop iteration issues its loads.
  static_assert(kQTileBytes <= kStageBytes, "Q tile must fit in one K/V stage");
  static constexpr int kSmemBytes = kStages * kStageBytes;
};

}  // namespace sage::cuda
