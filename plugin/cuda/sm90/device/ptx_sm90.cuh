// Thin wrappers over the sm_90a PTX the Hopper kernel needs: mbarriers, TMA tile loads, wgmma fences and
// shared-memory matrix descriptors, register reallocation, and two conversions.
//
// Everything here compiles to nothing outside an sm_90a device pass (SAGE_SM90_DEVICE == 0), so the
// translation units of plugin/cuda/sm90 can sit in a target built for "80-real;89-real;90a-real" and only
// the 90a pass emits real code.
#pragma once
#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ == 900) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SAGE_SM90_DEVICE 1
#else
#define SAGE_SM90_DEVICE 0
#endif

namespace sage::sm90 {

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// ---- mbarrier ---------------------------------------------------------------------------------------
__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t count) {
#if SAGE_SM90_DEVICE
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count) : "memory");
#else
  (void)bar; (void)count;
#endif
}

// Makes the initialised barriers visible to the async proxy (TMA) before any thread uses them.
__device__ __forceinline__ void fence_barrier_init() {
#if SAGE_SM90_DEVICE
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
#if SAGE_SM90_DEVICE
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(bytes)
               : "memory");
#else
  (void)bar; (void)bytes;
#endif
}

__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
#if SAGE_SM90_DEVICE
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(bar)) : "memory");
#else
  (void)bar;
#endif
}

// Blocks until the phase with parity `parity` has completed. A freshly initialised barrier counts its
// (virtual) previous phase, parity 1, as completed, which lets producers pass their first wait on "empty".
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
#if SAGE_SM90_DEVICE
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "SAGE_MBAR_WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra SAGE_MBAR_WAIT;\n"
      "}\n" ::"r"(smem_u32(bar)),
      "r"(parity)
      : "memory");
#else
  (void)bar; (void)parity;
#endif
}

// ---- TMA --------------------------------------------------------------------------------------------
__device__ __forceinline__ void prefetch_tensor_map(const CUtensorMap* map) {
#if SAGE_SM90_DEVICE
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
#else
  (void)map;
#endif
}

// One box of a 3-D tensor map into shared memory; completion is counted in bytes on `bar`.
// Coordinates are innermost first; parts of the box outside the tensor arrive as zeros.
__device__ __forceinline__ void tma_load_3d(void* dst, const CUtensorMap* map, uint64_t* bar, int c0, int c1, int c2) {
#if SAGE_SM90_DEVICE
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5}], "
      "[%2];\n" ::"r"(smem_u32(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_u32(bar)), "r"(c0), "r"(c1), "r"(c2)
      : "memory");
#else
  (void)dst; (void)map; (void)bar; (void)c0; (void)c1; (void)c2;
#endif
}

// ---- wgmma bookkeeping ------------------------------------------------------------------------------
__device__ __forceinline__ void wgmma_fence() {
#if SAGE_SM90_DEVICE
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void wgmma_commit() {
#if SAGE_SM90_DEVICE
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}

template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
#if SAGE_SM90_DEVICE
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
#endif
}

// Pins a register at this point of the instruction stream: after a wgmma wait, reads of the accumulator
// must not be hoisted above the wait by the compiler (it cannot see that wgmma writes asynchronously).
__device__ __forceinline__ void pin(float& r) { asm volatile("" : "+f"(r)::"memory"); }
__device__ __forceinline__ void pin(int32_t& r) { asm volatile("" : "+r"(r)::"memory"); }
__device__ __forceinline__ void pin(uint32_t& r) { asm volatile("" : "+r"(r)::"memory"); }
template <class T, int N>
__device__ __forceinline__ void pin_all(T (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) pin(r[i]);
}

// Shared-memory matrix descriptor of a K-major operand tile written by TMA with the swizzle that equals
// its row pitch (128 B rows: 128B swizzle; 64 B rows: 64B swizzle). Rows are dense, so one 8-row group of
// core matrices follows the previous one after 8 rows (SBO); the leading offset is unused because one
// wgmma's K extent (32 bytes) lies inside one swizzle row. Advancing along K inside the row is done by
// adding the byte offset to the start address; the hardware applies the swizzle to the final address,
// which is why tiles must sit on 1024-byte boundaries (base offset 0).
template <int kRowBytes>
__device__ __forceinline__ uint64_t make_smem_desc(uint32_t smem_addr) {
  static_assert(kRowBytes == 128 || kRowBytes == 64, "rows of 64 or 128 bytes");
  constexpr uint64_t kLayout = kRowBytes == 128 ? 1 : 2;
  uint64_t desc = static_cast<uint64_t>((smem_addr & 0x3FFFFu) >> 4);
  desc |= static_cast<uint64_t>(1) << 16;
  desc |= static_cast<uint64_t>((8 * kRowBytes) >> 4) << 32;
  desc |= kLayout << 62;
  return desc;
}

// ---- named barriers (ids 1..15; 0 is __syncthreads) --------------------------------------------------
// bar.sync waits until `count` threads (this warpgroup's and the arriving ones) reached barrier `id`;
// bar.arrive counts the calling threads in without waiting.
__device__ __forceinline__ void named_bar_sync(int id, int count) {
#if SAGE_SM90_DEVICE
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
#endif
}

__device__ __forceinline__ void named_bar_arrive(int id, int count) {
#if SAGE_SM90_DEVICE
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(count) : "memory");
#endif
}

// ---- shared memory by address (the epilogue's staging buffer; generic pointers would compile to generic accesses)
__device__ __forceinline__ void st_shared_b32(uint32_t addr, uint32_t v) {
#if SAGE_SM90_DEVICE
  asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(v) : "memory");
#else
  (void)addr; (void)v;
#endif
}
__device__ __forceinline__ void st_shared_v2_b32(uint32_t addr, uint32_t v0, uint32_t v1) {
#if SAGE_SM90_DEVICE
  asm volatile("st.shared.v2.b32 [%0], {%1, %2};\n" ::"r"(addr), "r"(v0), "r"(v1) : "memory");
#else
  (void)addr; (void)v0; (void)v1;
#endif
}
__device__ __forceinline__ uint4 ld_shared_v4_b32(uint32_t addr) {
  uint4 v = make_uint4(0, 0, 0, 0);
#if SAGE_SM90_DEVICE
  asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "r"(addr)
               : "memory");
#else
  (void)addr;
#endif
  return v;
}

// A 16-byte global store (the caller guarantees the alignment; the compiler cannot always prove it and would
// split the store into four).
__device__ __forceinline__ void st_global_v4_b32(void* ptr, const uint4& v) {
#if SAGE_SM90_DEVICE
  asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"l"(ptr), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
               : "memory");
#else
  (void)ptr; (void)v;
#endif
}

// ---- programmatic dependent launch ------------------------------------------------------------------
// The op's launches (three, or two for short sequences) chain programmatically (host/dependent_launch.h): a kernel lets the next one start its
// CTAs early (they run their prologue and loads that do not depend on it), and the next one waits for this
// grid's completion and memory before it reads what this grid wrote. Without a programmatic dependency (a plain
// launch) both return at once.
__device__ __forceinline__ void griddep_launch_dependents() {
#if SAGE_SM90_DEVICE
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void griddep_wait() {
#if SAGE_SM90_DEVICE
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

// ---- thread block clusters (the single-launch quantization of short sequences, prepass.cuh) ------------
__device__ __forceinline__ uint32_t cluster_size() {
  uint32_t n = 1;
#if SAGE_SM90_DEVICE
  asm volatile("mov.u32 %0, %%cluster_nctarank;\n" : "=r"(n));
#endif
  return n;
}
// Arrive (release: this CTA's shared-memory writes become visible to the cluster) / wait (acquire) on the
// cluster barrier; every thread of the cluster takes part.
__device__ __forceinline__ void cluster_arrive() {
#if SAGE_SM90_DEVICE
  asm volatile("barrier.cluster.arrive.release.aligned;\n" ::: "memory");
#endif
}
// Arrive without memory ordering: for an arrival that only says "done reading the others' shared memory", made
// after a CTA barrier that follows the uses of every value read.
__device__ __forceinline__ void cluster_arrive_relaxed() {
#if SAGE_SM90_DEVICE
  asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void cluster_wait() {
#if SAGE_SM90_DEVICE
  asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory");
#endif
}
// A float of CTA `rank`'s shared memory at the address this CTA's `addr` has in its own.
__device__ __forceinline__ float ld_shared_cluster_f32(uint32_t addr, uint32_t rank) {
  float v = 0.f;
#if SAGE_SM90_DEVICE
  uint32_t remote = 0;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(addr), "r"(rank));
  asm volatile("ld.shared::cluster.f32 %0, [%1];\n" : "=f"(v) : "r"(remote) : "memory");
#else
  (void)addr; (void)rank;
#endif
  return v;
}

// ---- warpgroup register reallocation ----------------------------------------------------------------
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_inc() {
#if SAGE_SM90_DEVICE
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
#endif
}

template <int kRegs>
__device__ __forceinline__ void setmaxnreg_dec() {
#if SAGE_SM90_DEVICE
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
#endif
}

// ---- conversions ------------------------------------------------------------------------------------
// Exact int32 -> float for |x| < 2^22 with two ALU ops: the integer lands in the mantissa of 1.5 * 2^23.
// Q.K^T dot products of int8 codes stay below 127 * 127 * 128 < 2^21. (The kernel now uses the native
// I2FP, measured as fast or faster; kept for experiments, docs/HOPPER_KERNEL.md ledger step 3.)
__device__ __forceinline__ float exact_i2f(int32_t x) { return __int_as_float(x + 0x4B400000) - 12582912.0f; }

// 2^x on the SFU (ex2.approx.ftz); 2^-inf = +0.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
#if SAGE_SM90_DEVICE
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
#else
  y = exp2f(x);
#endif
  return y;
}

// Four floats -> four e4m3 bytes (satfinite, nearest even, as __nv_cvt_float_to_fp8), x0 in the lowest byte.
__device__ __forceinline__ uint32_t pack_e4m3x4(float x0, float x1, float x2, float x3) {
  uint32_t out = 0;
#if SAGE_SM90_DEVICE
  uint16_t lo, hi;
  // cvt ... d, a, b puts a in the upper byte and b in the lower one.
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(lo) : "f"(x1), "f"(x0));
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(hi) : "f"(x3), "f"(x2));
  out = static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
#else
  (void)x0; (void)x1; (void)x2; (void)x3;
#endif
  return out;
}

}  // namespace sage::sm90
