// The sm_90a SageAttention kernel: warp-specialised, TMA-fed, wgmma-computed.
//
//   warpgroup 0 (producer, 24 registers): one thread issues TMA loads of the CTA's Q tile and of the
//     K / V^T tiles into a kStages-deep ring, each completing on its "full" mbarrier;
//   warpgroups 1, 2 (consumers, 240 registers): 64 query rows each, one 64-key contract block at a time:
//     S = Q.K^T   wgmma m64n64k32 s32.s8.s8, both operands in shared memory, D/32 k-steps;
//     softmax (softmax.cuh) -> P~ as e4m3 A-fragments in registers;
//     R = P~.V    wgmma m64nDk32 f32.e4m3.e4m3 (RS) into a fresh accumulator, then O = alpha*O + R in
//                 FP32 registers (two-level accumulation);
//     software-pipelined (consume()): the softmax of block b+1 overlaps the P~.V of block b; with two consumer
//     warpgroups (D=128) they take turns to issue their wgmmas (issue_turns.cuh), so one's softmax overlaps the
//     other's GEMMs. (D=64: three consumer warpgroups of 160 registers, no turns.)
//   The consumers' "empty" arrivals (one per warp) let the producer refill a stage.
// Each CTA walks the (query tile, q head, batch) tiles grid-stride (tile_coord): one tile per CTA, or, for the
// launches that gain from it (launch_grid.h), persistent with one CTA per SM, where the producer loads the next
// tile's Q and first K/V stages while the consumers finish and store the current one.
// The masked kernels (key_lengths, attn_mask) run the same CTA on each tile's batch's key range, with the mask's
// softmax for the blocks it touches (attention_masked.cuh, mask_softmax.cuh).
#pragma once
#include <cuda.h>

#include <cstdint>
#include <type_traits>

#include "../device/ptx_sm90.cuh"
#include "../device/wgmma_ops.cuh"
#include "epilogue.cuh"
#include "issue_turns.cuh"
#include "kernel_params.h"
#include "mask_softmax.cuh"
#include "quant_groups.h"
#include "softmax.cuh"
#include "traits.h"

namespace sage::sm90 {

template <int kHeadDim>
__device__ __forceinline__ void wgmma_pv(float (&d)[kHeadDim / 2], const uint32_t (&a)[4], uint64_t desc_b,
                                         uint32_t scale_d) {
  if constexpr (kHeadDim == 128) {
    wgmma_m64n128k32_f32_e4m3_rs(d, a, desc_b, scale_d);
  } else {
    wgmma_m64n64k32_f32_e4m3_rs(d, a, desc_b, scale_d);
  }
}

template <class Tr>
__device__ __forceinline__ AttnSharedStorage<Tr>& shared_storage() {
  extern __shared__ uint8_t smem_raw[];
  const uintptr_t base = (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~static_cast<uintptr_t>(1023);
  return *reinterpret_cast<AttnSharedStorage<Tr>*>(base);
}

// Position in a ring of kSlots buffers of the seq-th use (counted over all of a CTA's tiles), and the parity of
// that buffer's mbarrier phases for it. K/V stages: RingSlot<Tr::kStages> of the CTA's stage sequence; Q buffers:
// RingSlot<Tr::kQBuffers> of its tile sequence.
template <int kSlots>
struct RingSlot {
  int index;
  uint32_t phase;
  __device__ __forceinline__ explicit RingSlot(int seq)
      : index(seq % kSlots), phase(static_cast<uint32_t>((seq / kSlots) & 1)) {}
};

// One tile's loads: Q once the consumers released the Q buffer's previous tile (q_empty), then its n_tiles K / V^T
// stages into the ring, continuing the CTA's stage sequence at stage_base.
template <class Tr>
__device__ __forceinline__ void produce(AttnSharedStorage<Tr>& ss, const CUtensorMap* tm_q, const CUtensorMap* tm_k,
                                        const CUtensorMap* tm_v, int qt, int bh, int bhk, int n_tiles, int iter,
                                        int stage_base) {
  const RingSlot<Tr::kQBuffers> q(iter);
  mbar_wait(&ss.q_empty[q.index], q.phase ^ 1u);
  mbar_arrive_expect_tx(&ss.q_full[q.index], Tr::kQBytes);
  tma_load_3d(ss.q[q.index], tm_q, &ss.q_full[q.index], 0, qt * Tr::kBlockM, bh);
  for (int j = 0; j < n_tiles; ++j) {
    const RingSlot<Tr::kStages> slot(stage_base + j);
    const int stage = slot.index;
    const uint32_t phase = slot.phase;
    mbar_wait(&ss.k_empty[stage], phase ^ 1);
    mbar_arrive_expect_tx(&ss.k_full[stage], Tr::kKBytes);
    tma_load_3d(ss.k[stage], tm_k, &ss.k_full[stage], 0, j * Tr::kBlockN, bhk);
    mbar_wait(&ss.v_empty[stage], phase ^ 1);
    mbar_arrive_expect_tx(&ss.v_full[stage], Tr::kVBytes);
    tma_load_3d(ss.v[stage], tm_v, &ss.v_full[stage], j * Tr::kBlockN, 0, bhk);
  }
}

// The second level of the two-level accumulation, O = alpha * O + R, as one FMA per element (o[4n + e] belongs to
// row e >> 1), on the kN accumulator registers from o[kFirst] on (a split P~.V's R covers half of O).
template <int kFirst, int kO, int kN>
__device__ __forceinline__ void rescale_accumulate(float (&o)[kO], const float (&alpha)[2], const float (&r)[kN]) {
  static_assert(kFirst % 4 == 0 && kFirst + kN <= kO, "R covers whole 8-column chunks of O");
#pragma unroll
  for (int i = 0; i < kN; ++i) o[kFirst + i] = fmaf(o[kFirst + i], alpha[(i >> 1) & 1], r[i]);
}

// One consumer warpgroup on one tile (the CTA's iter-th; its first K/V stage is the CTA's stage_base-th): 64 query
// rows, all key blocks of the tile, software-pipelined so that the softmax of block b+1 runs while the tensor
// cores compute P~.V of block b:
//
//   issue QK(b+1) -> S ; issue PV(b) -> R ; wait QK(b+1) ; softmax(b+1) -> P~ next ; wait PV(b) ;
//   O = alpha(b) * O + R ; P~ <- P~ next
//
// Blocks are the contract's 64-key blocks; a pipeline stage holds two of them (128 keys), and a stage is
// released to the producer once its last block has been read. Masked kernels (kMask, mp: their mask inputs;
// null for the unmasked ones) see their batch's p.kv_len / p.causal_offset (batch_view) and hand the blocks
// their mask touches to BlockMasks.
template <class Tr, typename OutT, bool kCausal, MaskKind kMask = MaskKind::kNone>
__device__ __forceinline__ void consume(AttnSharedStorage<Tr>& ss, const AttnKernelParams& p, const AttnMaskParams* mp,
                                        int cwg, int qt, int b, int h, int bh, int bhk, int cta_blocks, int cta_stages,
                                        int iter, int stage_base) {
  constexpr int kD = Tr::kHeadDim;
  const int tw = threadIdx.x - 128 * (cwg + 1);
  const int warp = tw >> 5;
  const int lane = tw & 31;
  const int t = lane & 3;
  const int row0 = qt * Tr::kBlockM + Tr::kWarpgroupRows * cwg + 16 * warp + (lane >> 2);
  const int wg_first_row = qt * Tr::kBlockM + Tr::kWarpgroupRows * cwg;
  // Causal: this warpgroup's rows see keys up to wg_first_row + 63 + offset only; later blocks of the CTA's
  // last stage are skipped (the stage is still released, by the warpgroup's own last block). A
  // warpgroup may see no key at all (bottom_right with Sq > Skv): its rows output 0.
  const int wg_key_end = wg_first_row + Tr::kWarpgroupRows + p.causal_offset;  // keys < wg_key_end visible
  const int n_blocks = kCausal ? max(0, min(cta_blocks, (wg_key_end + 63) / 64)) : cta_blocks;
  const int row_key_shift = kCausal ? p.causal_offset : 0;
  const auto gran = static_cast<schema::QkGranularity>(p.granularity);
  // Rows r0 and r0 + 8 share their Q group under every granularity (same 32-row slice, same i % 8).
  const float qs = row0 < p.q_len ? p.q_scale[static_cast<int64_t>(bh) * p.q_groups + q_group_of(row0, gran)] : 0.f;
  const float* ks_head = p.k_scale + static_cast<int64_t>(bhk) * p.k_groups;
  BlockMasks<kMask, kD> masks(p, mp, b, h, row0);  // nothing for the unmasked kernels
  // Every warpgroup takes as many issue turns as the CTA's last warpgroup runs loop steps (the most).
  const int last_wg_blocks =
      kCausal ? max(0, min(cta_blocks, (qt * Tr::kBlockM + Tr::kBlockM + p.causal_offset + 63) / 64)) : cta_blocks;
  // (Not for general masks: their softmax already runs short of registers.)
  constexpr bool kTurns = Tr::kPingPong && kMask != MaskKind::kGeneral;
  IssueTurns<Tr::kConsumerWarpgroups, kTurns> turns(cwg, max(0, last_wg_blocks - 1));

  float o[Tr::kAccRegs];
  constexpr bool kSplitPV = Tr::kSplitPVMode == 2 || (Tr::kSplitPVMode == 1 && kCausal && kMask == MaskKind::kNone);
  constexpr int kRRegs = kSplitPV ? Tr::kAccRegs / 2 : Tr::kAccRegs;
  float r_acc[kRRegs];
  int32_t s[32];
#pragma unroll
  for (int i = 0; i < Tr::kAccRegs; ++i) o[i] = 0.f;
#pragma unroll
  for (int i = 0; i < kRRegs; ++i) r_acc[i] = 0.f;
#pragma unroll
  for (int i = 0; i < 32; ++i) s[i] = 0;
  // P~ and alpha of two consecutive blocks: the P~.V of one reads its registers asynchronously while the
  // softmax of the next writes the other set. Indices are compile-time (the loop runs in pairs): a copy
  // "cur <- next" would let the register allocator merge the sets, and ptxas then serialises every wgmma.
  uint32_t pf[2][2][4];
  float alpha[2][2];
  RowState st;
  st.m[0] = st.m[1] = -INFINITY;
  st.l[0] = st.l[1] = 0.f;

  // Matrix descriptors, built once: a tile's descriptor is its base's plus (byte offset >> 4) (the start address
  // field cannot overflow below 256 KB), so a block needs one add per operand instead of a rebuild.
  const RingSlot<Tr::kQBuffers> q_slot(iter);
  const uint64_t q_desc =
      make_smem_desc<Tr::kQKRowBytes>(smem_u32(ss.q[q_slot.index]) + Tr::kWarpgroupRows * cwg * kD);
  const uint64_t k_desc0 = make_smem_desc<Tr::kQKRowBytes>(smem_u32(ss.k[0]));
  const uint64_t v_desc0 = make_smem_desc<Tr::kVRowBytes>(smem_u32(ss.v[0]));
  auto stage_of = [stage_base](int blk) { return RingSlot<Tr::kStages>(stage_base + (blk >> 1)).index; };
  auto phase_of = [stage_base](int blk) { return RingSlot<Tr::kStages>(stage_base + (blk >> 1)).phase; };
  // End of the tile: release its Q, and the stages this warpgroup never read (a causal warpgroup can stop a
  // stage before its CTA) so that every stage sees one arrival per consumer warp. A skipped stage is released
  // only once it is full: an earlier arrival could complete the phase of the stage's previous use while another
  // warpgroup still reads it.
  auto finish_tile = [&]() {
    for (int j = (n_blocks + 1) / 2; j < cta_stages; ++j) {
      const RingSlot<Tr::kStages> slot(stage_base + j);
      mbar_wait(&ss.k_full[slot.index], slot.phase);
      mbar_wait(&ss.v_full[slot.index], slot.phase);
      if (lane == 0) {
        mbar_arrive(&ss.k_empty[slot.index]);
        mbar_arrive(&ss.v_empty[slot.index]);
      }
    }
    if (lane == 0) mbar_arrive(&ss.q_empty[q_slot.index]);
  };
  auto last_of_stage = [n_blocks](int blk) { return (blk & 1) == 1 || blk + 1 == n_blocks; };

  // A stage's two blocks arrive together: only its first block waits on the "full" barriers (each poll is
  // an exposed SYNCS round trip).
  auto issue_qk = [&](int blk) {
    if ((blk & 1) == 0) mbar_wait(&ss.k_full[stage_of(blk)], phase_of(blk));
    const uint64_t k_desc = k_desc0 + static_cast<uint32_t>((stage_of(blk) * Tr::kKBytes + (blk & 1) * 64 * kD) >> 4);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < Tr::kKSteps; ++kk) {  // k32 steps: 32 bytes further along each row
      wgmma_m64n64k32_s32_s8s8_ss(s, q_desc + 2 * kk, k_desc + 2 * kk, kk > 0 ? 1u : 0u);
    }
    wgmma_commit();
  };
  auto qk_done = [&](int blk) {  // after the wait that covers QK(blk)
    pin_all(s);
    if (last_of_stage(blk) && lane == 0) mbar_arrive(&ss.k_empty[stage_of(blk)]);
  };
  // K scale of the next block to go through the softmax, loaded one block ahead: it is the only global
  // load of the loop and would otherwise put an L2 round trip at the head of every softmax. (Indexing through a
  // per-lane pointer and stride instead of k_group_of saves ~15 instructions per block but measured 3-9% slower
  // at D = 128: docs/HOPPER_KERNEL.md ledger step 19.)
  auto k_scale_of = [&](int blk) { return blk < n_blocks ? ks_head[k_group_of(64 * blk + 2 * t, gran)] : 0.f; };
  float ks_next = k_scale_of(0);
  // Blocks before `clear_blocks` have every key valid and visible to every row of the warpgroup (an
  // underestimate is harmless: such blocks then take the branchy path below). Those blocks run the unmasked
  // softmax with no runtime test (softmax_clear): a per-block branch between two inlined softmax bodies cost
  // 10-20% (docs/HOPPER_KERNEL.md ledger step 15). The masked kernels keep their per-block hook.
  const int clear_blocks =
      kCausal ? max(0, min(p.kv_len >> 6, (wg_first_row + row_key_shift + 1) >> 6)) : (p.kv_len >> 6);
  constexpr bool kPeel = kMask == MaskKind::kNone || kMask == MaskKind::kLengths;
  auto softmax_clear = [&](int blk, uint32_t(&pf)[2][4], float(&alpha)[2]) {  // a block known to need no mask
    const float sc = qs * ks_next;
    ks_next = k_scale_of(blk + 1);
    softmax_block<false, kCausal>(s, sc, st, alpha, pf, 64 * blk + 2 * t, row0 + row_key_shift, p.kv_len);
  };
  auto softmax = [&](int blk, uint32_t(&pf)[2][4], float(&alpha)[2]) {
    const int key0 = 64 * blk;
    const float sc = qs * ks_next;
    ks_next = k_scale_of(blk + 1);
    const bool masked = key0 + 64 > p.kv_len || (kCausal && key0 + 63 > wg_first_row + row_key_shift);
    // The causal test compares keys with row + offset: pass the rows shifted.
    if (masks.template softmax<kCausal>(blk, n_blocks, s, sc, st, alpha, pf, key0 + 2 * t, row0 + row_key_shift,
                                        p.kv_len)) {
      return;
    }
    if (masked) {
      softmax_block<true, kCausal>(s, sc, st, alpha, pf, key0 + 2 * t, row0 + row_key_shift, p.kv_len);
    } else {
      softmax_block<false, kCausal>(s, sc, st, alpha, pf, key0 + 2 * t, row0 + row_key_shift, p.kv_len);
    }
  };
  // V^T descriptor of block blk's tokens (64 tokens = 64 bytes of V^T rows; a k32 slice is 32 bytes, +2), from
  // V^T row (half * D/2) on: split P~.V reads the rows of its output half.
  auto pv_desc = [&](int blk, int half) {
    return v_desc0 + static_cast<uint32_t>(
                         (stage_of(blk) * Tr::kVBytes + (blk & 1) * 64 + half * (kD / 2) * Tr::kVRowBytes) >> 4);
  };
  // Split P~.V: one output half (R is D/2 columns wide), both k32 slices of the block.
  auto wgmma_pv_half = [&](const uint32_t(&pf)[2][4], uint64_t v_desc) {
    if constexpr (kSplitPV) {
      wgmma_m64n64k32_f32_e4m3_rs(r_acc, pf[0], v_desc, 0u);
      wgmma_m64n64k32_f32_e4m3_rs(r_acc, pf[1], v_desc + 2, 1u);
    } else {
      (void)pf; (void)v_desc;
    }
  };
  auto issue_pv = [&](int blk, const uint32_t(&pf)[2][4]) {
    if ((blk & 1) == 0) mbar_wait(&ss.v_full[stage_of(blk)], phase_of(blk));
    const uint64_t v_desc = pv_desc(blk, 0);
    wgmma_fence();
    if constexpr (kSplitPV) {  // the low half of V^T's rows (output columns 0 .. D/2 - 1)
      wgmma_pv_half(pf, v_desc);
    } else {
      wgmma_pv<kD>(r_acc, pf[0], v_desc, 0u);
      wgmma_pv<kD>(r_acc, pf[1], v_desc + 2, 1u);
    }
    wgmma_commit();
  };
  auto finish_block = [&](int blk, const float(&a)[2], const uint32_t(&pfb)[2][4]) {
    // after the wait that covers PV(blk): O = alpha * O + R
    pin_all(r_acc);
    if constexpr (kSplitPV) {
      rescale_accumulate<0>(o, a, r_acc);
      wgmma_fence();  // the high half, issued once the low half's R is in O
      wgmma_pv_half(pfb, pv_desc(blk, 1));
      wgmma_commit();
      wgmma_wait<0>();
      pin_all(r_acc);
      if (last_of_stage(blk) && lane == 0) mbar_arrive(&ss.v_empty[stage_of(blk)]);
      rescale_accumulate<kRRegs>(o, a, r_acc);
    } else {
      (void)pfb;
      if (last_of_stage(blk) && lane == 0) mbar_arrive(&ss.v_empty[stage_of(blk)]);
      rescale_accumulate<0>(o, a, r_acc);
    }
  };
  // Block blk (P~ set kCur) while block blk + 1 exists:
  //   [turn] issue QK(blk + 1), PV(blk) [/turn]; wait QK(blk + 1); softmax(blk + 1); wait PV(blk); O update
  // The softmax of blk + 1 overlaps the P~.V of blk; with issue turns (two consumer warpgroups) it also overlaps
  // the other warpgroup's GEMMs. (ptxas hoists the PV(blk) wait to just after the row max and the turn's barrier
  // above the O update; forcing the written order through data dependencies measured 10% slower: ledger step 19.)
  auto step = [&](int blk, auto cur, auto clear) {
    constexpr int kCur = decltype(cur)::value;
    turns.begin();
    issue_qk(blk + 1);
    issue_pv(blk, pf[kCur]);
    turns.end();
    wgmma_wait<1>();  // groups retire in order: QK(blk + 1) is done, PV(blk) may still run
    qk_done(blk + 1);
    if constexpr (decltype(clear)::value) {
      softmax_clear(blk + 1, pf[1 - kCur], alpha[1 - kCur]);
    } else {
      softmax(blk + 1, pf[1 - kCur], alpha[1 - kCur]);
    }
    wgmma_wait<0>();
    finish_block(blk, alpha[kCur], pf[kCur]);
  };
  // deltaV for the epilogue, loaded under the last P~.V. (The general-mask kernels, short of registers, store
  // their output without the staging buffer: epilogue.cuh.)
  float2 dv[kD / 8];
  constexpr bool kStagedOutput = Tr::kStagedOutput && kMask != MaskKind::kGeneral;
  auto last = [&](int blk, auto cur) {
    constexpr int kCur = decltype(cur)::value;
    issue_pv(blk, pf[kCur]);
    load_v_scales<kD>(p, bhk, lane, dv);
    wgmma_wait<0>();
    finish_block(blk, alpha[kCur], pf[kCur]);
  };
  using Set0 = std::integral_constant<int, 0>;
  using Set1 = std::integral_constant<int, 1>;

  // Also when no block follows: the CTA must not retire under a pending TMA.
  mbar_wait(&ss.q_full[q_slot.index], q_slot.phase);
  if (n_blocks == 0) {
    turns.finish();
    finish_tile();
    load_v_scales<kD>(p, bhk, lane, dv);
    store_output<OutT, kD, kStagedOutput>(o, st, p, b, h, row0, lane, dv, ss.out_stage[4 * cwg + warp]);
    return;
  }
  issue_qk(0);
  wgmma_wait<0>();
  qk_done(0);
  softmax(0, pf[0], alpha[0]);
  using Clear = std::true_type;
  using Checked = std::false_type;
  int blk = 0;
  if constexpr (kPeel) {
    for (; blk + 2 < n_blocks && blk + 2 < clear_blocks; blk += 2) {  // softmax of blocks blk+1, blk+2
      step(blk, Set0{}, Clear{});
      step(blk + 1, Set1{}, Clear{});
    }
  } else {
    (void)clear_blocks;
  }
  for (; blk + 2 < n_blocks; blk += 2) {
    step(blk, Set0{}, Checked{});
    step(blk + 1, Set1{}, Checked{});
  }
  if (blk + 1 < n_blocks) {
    step(blk, Set0{}, Checked{});
    last(blk + 1, Set1{});
  } else {
    last(blk, Set0{});
  }
  turns.finish();
  finish_tile();  // every wgmma of the tile has retired: its Q may be overwritten

  store_output<OutT, kD, kStagedOutput>(o, st, p, b, h, row0, lane, dv, ss.out_stage[4 * cwg + warp]);
}

// Tile i of a launch: q tiles fastest, so the CTAs running at one time share their heads' K/V in L2;
// causal: each head's longest tile first, so that short tiles fill the tail.
struct TileCoord {
  int qt, h, b;
};
template <class Tr, bool kCausal>
__device__ __forceinline__ TileCoord tile_coord(const AttnKernelParams& p, int64_t i) {
  const int q_tiles = (p.q_len + Tr::kBlockM - 1) / Tr::kBlockM;
  const int t = static_cast<int>(i % q_tiles);
  const int64_t hb = i / q_tiles;
  return {kCausal ? q_tiles - 1 - t : t, static_cast<int>(hb % p.q_heads), static_cast<int>(hb / p.q_heads)};
}

// The CTA: barriers, then the producer and consumer roles, each walking the launch's tiles grid-stride in the
// same order. view(b) gives a tile's params: p itself, or (masked kernels) batch_view for its batch, whose
// kv_len and causal_offset both roles use, so the producer loads exactly the stages the consumers wait for.
template <class Tr, typename OutT, bool kCausal, MaskKind kMask, class View>
__device__ __forceinline__ void attention_persistent(const CUtensorMap* tm_q, const CUtensorMap* tm_k,
                                                     const CUtensorMap* tm_v, const AttnKernelParams& p0,
                                                     const AttnMaskParams* mp, View view) {
  AttnSharedStorage<Tr>& ss = shared_storage<Tr>();
  const int64_t n_work = static_cast<int64_t>((p0.q_len + Tr::kBlockM - 1) / Tr::kBlockM) * p0.q_heads * p0.batch;
  // Broadcast from lane 0, so that the compiler knows it is warp-uniform (descriptors in uniform registers).
  const int wg = __shfl_sync(0xffffffffu, static_cast<int>(threadIdx.x) / 128, 0);

  if (threadIdx.x == 0) {
#pragma unroll
    for (int i = 0; i < Tr::kQBuffers; ++i) {
      mbar_init(&ss.q_full[i], 1);
      mbar_init(&ss.q_empty[i], 4 * Tr::kConsumerWarpgroups);  // one arrival per consumer warp
    }
#pragma unroll
    for (int i = 0; i < Tr::kStages; ++i) {
      mbar_init(&ss.k_full[i], 1);
      mbar_init(&ss.v_full[i], 1);
      mbar_init(&ss.k_empty[i], 4 * Tr::kConsumerWarpgroups);
      mbar_init(&ss.v_empty[i], 4 * Tr::kConsumerWarpgroups);
    }
    fence_barrier_init();
  }
  __syncthreads();
  // Everything below reads the quantization passes' output (launched as a dependent of pass 2).
  griddep_wait();

  // Keys a tile needs: all, or (causal) those up to its last row + offset.
  auto kv_end_of = [](const AttnKernelParams& p, int qt) {
    return kCausal ? max(0, min(p.kv_len, (qt + 1) * Tr::kBlockM + p.causal_offset)) : p.kv_len;
  };
  int stage_base = 0;  // 128-key stages of the CTA's earlier tiles
  int iter = 0;
  if (wg == 0) {
    setmaxnreg_dec<Tr::kProducerRegs>();
    if (threadIdx.x == 0) {
      prefetch_tensor_map(tm_q);
      prefetch_tensor_map(tm_k);
      prefetch_tensor_map(tm_v);
      for (int64_t i = blockIdx.x; i < n_work; i += gridDim.x, ++iter) {
        const TileCoord c = tile_coord<Tr, kCausal>(p0, i);
        const AttnKernelParams p = view(c.b);
        const int n_tiles = (kv_end_of(p, c.qt) + Tr::kBlockN - 1) / Tr::kBlockN;
        produce<Tr>(ss, tm_q, tm_k, tm_v, c.qt, c.b * p.q_heads + c.h, c.b * p.kv_heads + c.h / p.heads_per_kv,
                    n_tiles, iter, stage_base);
        stage_base += n_tiles;
      }
    }
  } else {
    setmaxnreg_inc<Tr::kConsumerRegs>();
    for (int64_t i = blockIdx.x; i < n_work; i += gridDim.x, ++iter) {
      const TileCoord c = tile_coord<Tr, kCausal>(p0, i);
      const AttnKernelParams p = view(c.b);
      const int kv_end = kv_end_of(p, c.qt);
      const int n_tiles = (kv_end + Tr::kBlockN - 1) / Tr::kBlockN;  // 128-key pipeline stages
      consume<Tr, OutT, kCausal, kMask>(ss, p, mp, wg - 1, c.qt, c.b, c.h, c.b * p.q_heads + c.h,
                                        c.b * p.kv_heads + c.h / p.heads_per_kv, (kv_end + 63) / 64, n_tiles, iter,
                                        stage_base);
      stage_base += n_tiles;
    }
  }
}

// Unmasked kernels: every tile sees the launch's params.
struct SameParams {
  const AttnKernelParams& p;
  __device__ __forceinline__ const AttnKernelParams& operator()(int) const { return p; }
};

// kStaged: AttnTraits::kStagedOutput (D = 64 has a kernel of each kind).
template <int kHeadDim, typename OutT, bool kCausal, bool kStaged = kHeadDim == 128>
__global__ void __launch_bounds__(AttnTraits<kHeadDim, kStaged>::kThreads, 1)
    sage_sm90_attention_kernel(const __grid_constant__ CUtensorMap tm_q, const __grid_constant__ CUtensorMap tm_k,
                               const __grid_constant__ CUtensorMap tm_v, const AttnKernelParams p) {
#if SAGE_SM90_DEVICE
  attention_persistent<AttnTraits<kHeadDim, kStaged>, OutT, kCausal, MaskKind::kNone>(&tm_q, &tm_k, &tm_v, p, nullptr,
                                                                                   SameParams{p});
#else
  (void)tm_q; (void)tm_k; (void)tm_v; (void)p;
#endif
}

}  // namespace sage::sm90
