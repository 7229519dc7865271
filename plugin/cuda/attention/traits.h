// Tile configuration of the mma.sync attention kernel. One CTA = 128 query rows (kBlockQ) x 64-key blocks
// (kBlockK). Host-safe.
//
// Warp shape: 4 warps of 32 rows by default. Every warp reads the whole K and V tile from shared memory for
// each block, so 32-row warps (two m16 tiles sharing each K/V fragment) halve the shared-memory traffic of
// 16-row warps, which is what bounds the 16-row version (8 warps x 24 KB per block at head_dim 128). The price
// is registers: 128 fp32 O accumulators + 64 S values per thread, so Q fragments are re-read from shared
// memory each block instead of living in registers, and two 128-thread CTAs share an SM.
#pragma once

#ifndef SAGE_ATTENTION_WARP_ROWS
#define SAGE_ATTENTION_WARP_ROWS 32
#endif
#ifndef SAGE_ATTENTION_Q_IN_REGISTERS
#define SAGE_ATTENTION_Q_IN_REGISTERS (SAGE_ATTENTION_WARP_ROWS == 16)
#endif
// CTAs per SM the register allocation is capped for.
#ifndef SAGE_ATTENTION_MIN_CTAS
#define SAGE_ATTENTION_MIN_CTAS (SAGE_ATTENTION_WARP_ROWS == 16 ? 1 : 2)
#endif

namespace sage::cuda {

template <int kHeadDim_, bool kInt4_, bool kFp8Pv_, bool kAccumF16_, bool kMasks_ = false>
struct AttentionTraits {
  static constexpr int kHeadDim = kHeadDim_;  // padded head dim: 64 or 128
  static constexpr bool kInt4 = kInt4_;       // Q.K^T with m16n8k64 s4 instead of m16n8k32 s8
  static constexpr bool kFp8Pv = kFp8Pv_;     // P~.V with m16n8k32 e4m3 (sm_89+) instead of m16n8k16 f16
  static constexpr bool kAccumF16 = kAccumF16_;  // per-block P~.V accumulates in fp16, then into fp32
  // The mask kernel: reads a key-padding bitmask per KV block or a general attn_mask per score. The plain
  // kernel (no mask, key_lengths, causal of either alignment) never carries that code.
  static constexpr bool kMasks = kMasks_;

  static constexpr int kBlockQ = 128;
  static constexpr int kBlockK = 64;
  static constexpr int kWarpRows = SAGE_ATTENTION_WARP_ROWS;
  static_assert(kWarpRows == 16 || kWarpRows == 32, "warps own one or two m16 tiles");
  static constexpr int kMTiles = kWarpRows / 16;
  static constexpr int kWarps = kBlockQ / kWarpRows;
  static constexpr int kThreads = kWarps * 32;
  static constexpr bool kQInRegisters = SAGE_ATTENTION_Q_IN_REGISTERS;
  static constexpr int kMinCtasPerSm = SAGE_ATTENTION_MIN_CTAS;

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
  // Q codes stay in their own region when fragments are re-read each block; otherwise the tile is only staged,
  // in stage 1, which is free until the first main-loop iteration issues its loads.
  static_assert(kQTileBytes <= kStageBytes, "Q tile must fit in one K/V stage");
  static constexpr int kQRegionBytes = kQInRegisters ? 0 : kQTileBytes;
  static constexpr int kQStageOffset = kQInRegisters ? kStageBytes : 0;
  static constexpr int kSmemBytes = kQRegionBytes + kStages * kStageBytes;
};

}  // namespace sage::cuda
