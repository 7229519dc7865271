// Warp-level tensor-core MMA wrappers (mma.sync). Fragment layouts follow the PTX ISA; the comments
// name the register -> (row, column) mapping the attention kernel relies on.
#pragma once
#include <cstdint>

namespace sage::cuda {

// D += A(16x32 s8, row) * B(32x8 s8, col), int32 accumulate.
// A: a0 = row g, k 4t..4t+3; a1 = row g+8, same k; a2/a3 = the same rows, k 16+4t..16+4t+3 (g = lane/4, t = lane%4).
// B: b0 = k 4t..4t+3, column g; b1 = k 16+4t..; C/D: c0,c1 = row g, cols 2t,2t+1; c2,c3 = row g+8.
__device__ __forceinline__ void mma_s8_m16n8k32(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// D += A(16x64 s4) * B(64x8 s4). Register layout is the s8 one with every byte holding two 4-bit values, so
// the same byte-addressed smem tiles and ldmatrix loads feed both instructions.
__device__ __forceinline__ void mma_s4_m16n8k64(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k64.row.col.s32.s4.s4.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// D += A(16x16 f16) * B(16x8 f16), f32 accumulate.
// A: a0 = row g, k 2t,2t+1; a1 = row g+8; a2 = row g, k 2t+8,2t+9; a3 = row g+8, k 2t+8,2t+9.
// B: b0 = k 2t,2t+1, column g; b1 = k 2t+8,2t+9.
__device__ __forceinline__ void mma_f16_m16n8k16_f32acc(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                        uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Same with an f16 accumulator: d[0] = half2(row g, cols 2t,2t+1), d[1] = half2(row g+8, ...).
__device__ __forceinline__ void mma_f16_m16n8k16_f16acc(uint32_t (&d)[2], const uint32_t (&a)[4], uint32_t b0,
                                                        uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f16.f16.f16.f16 {%0,%1}, {%2,%3,%4,%5}, {%6,%7}, {%0,%1};\n"
      : "+r"(d[0]), "+r"(d[1])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// FP8 E4M3 MMAs exist from sm_89 on. Callers compile them only where __CUDA_ARCH__ >= 890; on older targets
// the attention kernel that would use them is reduced to a trap (it is never launched there).
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 890)
#define SAGE_HAS_FP8_MMA 1

// D += A(16x32 e4m3) * B(32x8 e4m3), f32 (on Ada/Hopper: 22-bit) accumulate. Byte layout as mma_s8_m16n8k32.
__device__ __forceinline__ void mma_e4m3_m16n8k32_f32acc(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                         uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Same with an f16 accumulator (SageAttention2++): d[0] = half2(row g), d[1] = half2(row g+8).
__device__ __forceinline__ void mma_e4m3_m16n8k32_f16acc(uint32_t (&d)[2], const uint32_t (&a)[4], uint32_t b0,
                                                         uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.f16.e4m3.e4m3.f16 {%0,%1}, {%2,%3,%4,%5}, {%6,%7}, {%0,%1};\n"
      : "+r"(d[0]), "+r"(d[1])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif

}  // namespace sage::cuda
