// The sm_90a SageAttention kernel: warp-specialised, TMA-fed, wgmma-computed.
//
//   warpgroup 0 (producer, 24 registers): one thread issues TMA loads of the CTA's Q tile and of the
//     K / V^T tiles into a kStages-deep ring, each completing on its "full" mbarrier;
//   warpgroups 1, 2 (consumers, 240 registers): 64 query rows each. Per 128-key tile:
//     S = Q.K^T   wgmma m64n128k32 s32.s8.s8, both operands in shared memory, D/32 k-steps; release K;
//     softmax of the two 64-key contract blocks (softmax.cuh) -> P~ as e4m3 A-fragments in registers;
//     per block: R = P~.V  wgmma m64nDk32 f32.e4m3.e4m3 (RS) into a fresh accumulator, O = alpha*O + R
//     in FP32 registers (two-level accumulation; the rescale overlaps the wgmma); release V.
//   The consumers' "empty" arrivals (one per warp) let the producer refill a stage.
// One CTA per (128-query tile, q head, batch); causal grids visit the longest tiles of each head first.
#pragma once
#include <cuda.h>

#include <cstdint>

#include "../device/ptx_sm90.cuh"
#include "../device/wgmma_ops.cuh"
#include "epilogue.cuh"
#include "kernel_params.h"
#include "quant_groups.h"
#include "softmax.cuh"
#include "traits.h"

namespace sage::sm90 {

inline constexpr int kPingPongBarrier = 1;  // named barriers 1, 2 (0 is __syncthreads)

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

template <class Tr>
__device__ __forceinline__ void produce(AttnSharedStorage<Tr>& ss, const CUtensorMap* tm_q, const CUtensorMap* tm_k,
                                        const CUtensorMap* tm_v, int qt, int bh, int bhk, int n_tiles) {
  prefetch_tensor_map(tm_q);
  prefetch_tensor_map(tm_k);
  prefetch_tensor_map(tm_v);
  mbar_arrive_expect_tx(&ss.q_full, Tr::kQBytes);
  tma_load_3d(ss.q, tm_q, &ss.q_full, 0, qt * Tr::kBlockM, bh);
  for (int j = 0; j < n_tiles; ++j) {
    const int stage = j % Tr::kStages;
    const uint32_t phase = (j / Tr::kStages) & 1;
    mbar_wait(&ss.k_empty[stage], phase ^ 1);
    mbar_arrive_expect_tx(&ss.k_full[stage], Tr::kKBytes);
    tma_load_3d(ss.k[stage], tm_k, &ss.k_full[stage], 0, j * Tr::kBlockN, bhk);
    mbar_wait(&ss.v_empty[stage], phase ^ 1);
    mbar_arrive_expect_tx(&ss.v_full[stage], Tr::kVBytes);
    tma_load_3d(ss.v[stage], tm_v, &ss.v_full[stage], j * Tr::kBlockN, 0, bhk);
  }
}

// O = alpha * O for the two rows of the thread (o[4n + e] belongs to row e >> 1).
template <int kN>
__device__ __forceinline__ void rescale_rows(float (&o)[kN], const float (&alpha)[2]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) o[i] *= alpha[(i >> 1) & 1];
}

template <int kN>
__device__ __forceinline__ void accumulate(float (&o)[kN], const float (&r)[kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) o[i] += r[i];
}

template <class Tr, typename OutT, bool kCausal>
__device__ __forceinline__ void consume(AttnSharedStorage<Tr>& ss, const AttnKernelParams& p, int cwg, int qt, int b,
                                        int h, int bh, int bhk, int n_tiles) {
  constexpr int kD = Tr::kHeadDim;
  const int tw = threadIdx.x - 128 * (cwg + 1);
  const int warp = tw >> 5;
  const int lane = tw & 31;
  const int t = lane & 3;
  const int row0 = qt * Tr::kBlockM + Tr::kWarpgroupRows * cwg + 16 * warp + (lane >> 2);
  const auto gran = static_cast<schema::QkGranularity>(p.granularity);
  // Rows r0 and r0 + 8 share their Q group under every granularity (same 32-row slice, same i % 8).
  const float qs = row0 < p.q_len ? p.q_scale[static_cast<int64_t>(bh) * p.q_groups + q_group_of(row0, gran)] : 0.f;
  const float* ks_head = p.k_scale + static_cast<int64_t>(bhk) * p.k_groups;

  float o[Tr::kAccRegs];
  float r_acc[Tr::kAccRegs];
#pragma unroll
  for (int i = 0; i < Tr::kAccRegs; ++i) o[i] = r_acc[i] = 0.f;
#if defined(SAGE_SM90_PV_ONE_WAIT)
  float r_acc2[Tr::kAccRegs];
#pragma unroll
  for (int i = 0; i < Tr::kAccRegs; ++i) r_acc2[i] = 0.f;
#endif
  int32_t s[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) s[i] = 0;
  uint32_t pf[Tr::kPVSteps][4];
  RowState st;
  st.m[0] = st.m[1] = -INFINITY;
  st.l[0] = st.l[1] = 0.f;

  const uint32_t q_addr = smem_u32(ss.q) + Tr::kWarpgroupRows * cwg * kD;
#if defined(SAGE_SM90_PINGPONG)
  if (cwg == 1) named_barrier_arrive(kPingPongBarrier, 256);  // warpgroup 0 goes first
#endif
  const int wg_first_row = qt * Tr::kBlockM + Tr::kWarpgroupRows * cwg;
  mbar_wait(&ss.q_full, 0);

  for (int j = 0; j < n_tiles; ++j) {
    const int stage = j % Tr::kStages;
    const uint32_t phase = (j / Tr::kStages) & 1;

    // ---- S = Q . K^T -------------------------------------------------------------------------------
    mbar_wait(&ss.k_full[stage], phase);
    const uint32_t k_addr = smem_u32(ss.k[stage]);
#if defined(SAGE_SM90_PINGPONG)
    // The two consumer warpgroups take turns issuing Q.K^T, so that one's softmax tends to run while the
    // other's products occupy the tensor cores.
    named_barrier_sync(kPingPongBarrier + cwg, 256);
#endif
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < Tr::kKSteps; ++kk) {
      wgmma_m64n128k32_s32_s8s8_ss(s, make_smem_desc<Tr::kQKRowBytes>(q_addr + 32 * kk),
                                   make_smem_desc<Tr::kQKRowBytes>(k_addr + 32 * kk), kk > 0 ? 1u : 0u);
    }
    wgmma_commit();
#if defined(SAGE_SM90_PINGPONG)
    if (cwg == 0 || j + 1 < n_tiles) named_barrier_arrive(kPingPongBarrier + (1 - cwg), 256);
#endif
    wgmma_wait<0>();
    pin_all(s);
    if (lane == 0) mbar_arrive(&ss.k_empty[stage]);

    // ---- softmax of the tile's two contract blocks ---------------------------------------------------
    const int key0 = j * Tr::kBlockN;
    const float sc0 = key0 < p.kv_len ? qs * ks_head[k_group_of(key0 + 2 * t, gran)] : 0.f;
    const float sc1 = key0 + 64 < p.kv_len ? qs * ks_head[k_group_of(key0 + 64 + 2 * t, gran)] : 0.f;
    float alpha0[2], alpha1[2];
    const bool masked = key0 + Tr::kBlockN > p.kv_len || (kCausal && key0 + Tr::kBlockN - 1 > wg_first_row);
    if (masked) {
      softmax_block<0, true, kCausal>(s, sc0, st, alpha0, pf, key0 + 2 * t, row0, p.kv_len);
      softmax_block<1, true, kCausal>(s, sc1, st, alpha1, pf, key0 + 64 + 2 * t, row0, p.kv_len);
    } else {
      softmax_block<0, false, kCausal>(s, sc0, st, alpha0, pf, key0 + 2 * t, row0, p.kv_len);
      softmax_block<1, false, kCausal>(s, sc1, st, alpha1, pf, key0 + 64 + 2 * t, row0, p.kv_len);
    }

    // ---- O = alpha1 * (alpha0 * O + R0) + R1, each R a fresh FP8 accumulation ------------------------
    mbar_wait(&ss.v_full[stage], phase);
    const uint32_t v_addr = smem_u32(ss.v[stage]);
#if defined(SAGE_SM90_PV_ONE_WAIT)
    // Both blocks' products in flight at once, into two accumulators (the second reuses S's registers,
    // which are dead after the softmax); one wait.
    wgmma_fence();
    wgmma_pv<kD>(r_acc, pf[0], make_smem_desc<Tr::kVRowBytes>(v_addr), 0u);
    wgmma_pv<kD>(r_acc, pf[1], make_smem_desc<Tr::kVRowBytes>(v_addr + 32), 1u);
    wgmma_pv<kD>(r_acc2, pf[2], make_smem_desc<Tr::kVRowBytes>(v_addr + 64), 0u);
    wgmma_pv<kD>(r_acc2, pf[3], make_smem_desc<Tr::kVRowBytes>(v_addr + 96), 1u);
    wgmma_commit();
    wgmma_wait<0>();
    pin_all(r_acc);
    pin_all(r_acc2);
    rescale_rows(o, alpha0);
    accumulate(o, r_acc);
    rescale_rows(o, alpha1);
    accumulate(o, r_acc2);
#else
#pragma unroll
    for (int blk = 0; blk < 2; ++blk) {
      wgmma_fence();
      wgmma_pv<kD>(r_acc, pf[2 * blk], make_smem_desc<Tr::kVRowBytes>(v_addr + 64 * blk), 0u);
      wgmma_pv<kD>(r_acc, pf[2 * blk + 1], make_smem_desc<Tr::kVRowBytes>(v_addr + 64 * blk + 32), 1u);
      wgmma_commit();
      rescale_rows(o, blk == 0 ? alpha0 : alpha1);  // runs while the tensor cores work
      wgmma_wait<0>();
      pin_all(r_acc);
      accumulate(o, r_acc);
    }
#endif
    if (lane == 0) mbar_arrive(&ss.v_empty[stage]);
  }

  store_output<OutT, kD>(o, st, p, b, h, bhk, row0, lane);
}

template <int kHeadDim, typename OutT, bool kCausal>
__global__ void __launch_bounds__(AttnTraits<kHeadDim>::kThreads, 1)
    sage_sm90_attention_kernel(const __grid_constant__ CUtensorMap tm_q, const __grid_constant__ CUtensorMap tm_k,
                               const __grid_constant__ CUtensorMap tm_v, const AttnKernelParams p) {
#if SAGE_SM90_DEVICE
  using Tr = AttnTraits<kHeadDim>;
  AttnSharedStorage<Tr>& ss = shared_storage<Tr>();
  // Causal: the tile with the most keys first, so that short tiles fill the tail of the grid.
  const int qt = kCausal ? static_cast<int>(gridDim.x - 1 - blockIdx.x) : static_cast<int>(blockIdx.x);
  const int h = blockIdx.y;
  const int b = blockIdx.z;
  const int bh = b * p.q_heads + h;
  const int bhk = b * p.kv_heads + h / p.heads_per_kv;
  const int kv_tiles = (p.kv_len + Tr::kBlockN - 1) / Tr::kBlockN;
  const int n_tiles = kCausal ? min(kv_tiles, qt + 1) : kv_tiles;  // Sq == Skv, BLOCK_M == BLOCK_N
  const int wg = threadIdx.x / 128;

  if (threadIdx.x == 0) {
    mbar_init(&ss.q_full, 1);
#pragma unroll
    for (int i = 0; i < Tr::kStages; ++i) {
      mbar_init(&ss.k_full[i], 1);
      mbar_init(&ss.v_full[i], 1);
      mbar_init(&ss.k_empty[i], 4 * Tr::kConsumerWarpgroups);  // one arrival per consumer warp
      mbar_init(&ss.v_empty[i], 4 * Tr::kConsumerWarpgroups);
    }
    fence_barrier_init();
  }
  __syncthreads();

  if (wg == 0) {
    setmaxnreg_dec<Tr::kProducerRegs>();
    if (threadIdx.x == 0) produce<Tr>(ss, &tm_q, &tm_k, &tm_v, qt, bh, bhk, n_tiles);
  } else {
    setmaxnreg_inc<Tr::kConsumerRegs>();
    consume<Tr, OutT, kCausal>(ss, p, wg - 1, qt, b, h, bh, bhk, n_tiles);
  }
#else
  (void)tm_q; (void)tm_k; (void)tm_v; (void)p;
#endif
}

}  // namespace sage::sm90
