// Tile configuration of the sm_90a attention kernel, one specialisation per padded head dim.
#pragma once
#include <cstdint>

namespace sage::sm90 {

// kStagedOut picks the epilogue (see kStagedOutput): D = 64 has one kernel of each kind, the staged one for short key
// ranges (attention_launch.cuh).
template <int kHeadDimPadded, bool kStagedOut = kHeadDimPadded == 128>
struct AttnTraits {
  static_assert(kHeadDimPadded == 64 || kHeadDimPadded == 128, "head dims are padded to 64 or 128");
  static constexpr int kHeadDim = kHeadDimPadded;

  // Consumer warpgroups of 64 query rows each: one m64 wgmma per warpgroup, and warp w of a warpgroup owns
  // rows 16w..16w+15, which keeps each per_thread/per_warp Q group inside one warp (scales are looked up
  // per row, so the CTA's row count need not be the contract's BLOCK_Q). Two at D = 128 (their registers
  // need 240 each); three at D = 64, where 160 registers suffice and the softmax, not the tensor cores,
  // sets the pace, so more warps to interleave pay (+14% measured, docs/HOPPER_KERNEL.md).
  // (Experiment knobs SAGE_SM90_D64_WARPGROUPS / SAGE_SM90_D128_WARPGROUPS; three at D = 128 fit 160 registers only
  // with SAGE_SM90_SPLIT_PV=2 and still spill: ledger step 44.)
#if defined(SAGE_SM90_D64_WARPGROUPS)
  static constexpr int kD64Warpgroups = SAGE_SM90_D64_WARPGROUPS;
#else
  static constexpr int kD64Warpgroups = 3;
#endif
#if defined(SAGE_SM90_D128_WARPGROUPS)
  static constexpr int kD128Warpgroups = SAGE_SM90_D128_WARPGROUPS;
#else
  static constexpr int kD128Warpgroups = 2;
#endif
  static constexpr int kConsumerWarpgroups = kHeadDim == 64 ? kD64Warpgroups : kD128Warpgroups;
  // P~.V in two halves of D/2 output columns through a half-size R (attention_kernel.cuh): D = 128, unmasked causal
  // kernels by default (+4-5% there, -1..4% non-causal: ledger step 44). SAGE_SM90_SPLIT_PV: 0 never, 1 causal, 2 always.
#if defined(SAGE_SM90_SPLIT_PV)
  static constexpr int kSplitPVMode = kHeadDim == 128 ? SAGE_SM90_SPLIT_PV : 0;
#else
  static constexpr int kSplitPVMode = kHeadDim == 128 ? 1 : 0;
#endif
  static constexpr int kWarpgroupRows = 64;
  static constexpr int kBlockM = kWarpgroupRows * kConsumerWarpgroups;

  // 128 keys per pipeline stage (one TMA box each for K and V^T, 128-byte V^T rows with 128B swizzle);
  // the consumers walk it as two of the contract's 64-key blocks. Blocks of 64 keep S at 32 registers,
  // which is what lets the softmax of one block overlap the P~.V of the previous one (consume()).
  static constexpr int kBlockN = 128;

  // Three stages: every consumer warpgroup must release a stage before it is refilled, so one spare stage
  // absorbs their drift; 112 KB (D=128) still leaves room under the 227 KB limit. (Four measured 2% slower at
  // D = 128, the same at D = 64: ledger step 19.)
  static constexpr int kStages = 3;

  // Consumer warpgroups take turns to issue their wgmmas (issue_turns.cuh): +6% at D = 128 (two warpgroups);
  // with three at D = 64 it cost 12% (ledger step 18). SAGE_SM90_PINGPONG: 0 never, 1 two warpgroups, 2 always.
#if defined(SAGE_SM90_PINGPONG)
  static constexpr bool kPingPong = SAGE_SM90_PINGPONG == 2 || (SAGE_SM90_PINGPONG == 1 && kConsumerWarpgroups == 2);
#else
  static constexpr bool kPingPong = kConsumerWarpgroups == 2;
#endif

  // Non-causal launches run persistent CTAs (launch_grid.h). SAGE_SM90_PERSISTENT=0 turns them off.
#if defined(SAGE_SM90_PERSISTENT)
  static constexpr bool kPersistent = SAGE_SM90_PERSISTENT != 0;
#else
  static constexpr bool kPersistent = true;
#endif

  static constexpr int kThreads = 128 * (1 + kConsumerWarpgroups);  // warpgroup 0 produces
  // setmaxnreg budgets: 24 * 128 + 240 * 256 = 64,512 of the 65,536 registers of an SM (three consumers:
  // 24 * 128 + 160 * 384 = 64,512).
  static constexpr int kProducerRegs = 24;
  static constexpr int kConsumerRegs = kConsumerWarpgroups == 2 ? 240 : 160;

  static constexpr int kQKRowBytes = kHeadDim;  // int8 Q and K rows: 128B or 64B swizzle
  static constexpr int kVRowBytes = kBlockN;    // fp8 V^T rows hold 128 tokens: 128B swizzle
  static constexpr int kQBytes = kBlockM * kHeadDim;
  // Two Q buffers at D = 128: a persistent CTA's producer loads the next tile's Q while the current tile still runs
  // (with one, the load waited for the tile's end and its latency opened every tile): +3% at N <= 2K. At D = 64 the
  // same change cost 7-10% (ledger step 32), so one buffer there.
  static constexpr int kQBuffers = kHeadDim == 128 && kConsumerWarpgroups == 2 ? 2 : 1;
  static constexpr int kKBytes = kBlockN * kHeadDim;
  static constexpr int kVBytes = kHeadDim * kBlockN;
  static constexpr int kKSteps = kHeadDim / 32;  // k32 steps of Q.K^T
  static constexpr int kAccRegs = kHeadDim / 2;  // m64 x D fp32 accumulator registers per thread
  // Output rows staged through shared memory and stored as 16-byte pieces (epilogue.cuh): 16 rows per consumer
  // warp, sized for the widest output type (fp32). +13% kernel at N = 1K at D = 128. At D = 64 (three consumer
  // warpgroups) it costs 3-4% at N = 16K but gains 4-6% end to end at N = 1K (ledger steps 25 and 39), so D = 64
  // builds both kernels and short key ranges take the staged one.
  static constexpr bool kStagedOutput = kStagedOut;
  static constexpr int kStageWarpBytes = kStagedOutput ? 16 * kHeadDim * 4 : 16;
};

template <class Tr>
struct alignas(1024) AttnSharedStorage {
  alignas(1024) int8_t q[Tr::kQBuffers][Tr::kQBytes];
  alignas(1024) int8_t k[Tr::kStages][Tr::kKBytes];
  alignas(1024) uint8_t v[Tr::kStages][Tr::kVBytes];
  alignas(128) uint8_t out_stage[4 * Tr::kConsumerWarpgroups][Tr::kStageWarpBytes];
  uint64_t q_full[Tr::kQBuffers];
  uint64_t q_empty[Tr::kQBuffers];
  uint64_t k_full[Tr::kStages];
  uint64_t k_empty[Tr::kStages];
  uint64_t v_full[Tr::kStages];
  uint64_t v_empty[Tr::kStages];
};

// Dynamic shared memory is only guaranteed 16-byte alignment; the kernel rounds its base up to 1024.
template <class Tr>
constexpr int attn_smem_bytes() {
  return static_cast<int>(sizeof(AttnSharedStorage<Tr>)) + 1024;
}

}  // namespace sage::sm90
