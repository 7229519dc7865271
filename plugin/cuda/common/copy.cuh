// Global -> shared copies (cp.async) and shared -> register fragment loads (ldmatrix), plus the XOR swizzle
// that keeps both bank-conflict free.
#pragma once
#include <cstdint>

namespace sage::cuda {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte asynchronous copy that bypasses L1 (tiles are reused across CTAs through L2 only). When `valid` is
// false nothing is read and the 16 destination bytes are zero-filled, which pads ragged tiles for free.
__device__ __forceinline__ void cp_async_16(void* smem_dst, const void* gmem_src, bool valid = true) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem_dst)), "l"(gmem_src),
               "r"(src_bytes)
               : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// Four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i, register i receives it:
// lane l gets the 32-bit word at row l/4, bytes 4(l%4)..4(l%4)+3.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(smem_row)));
}

// Transposed: lane l gets the two b16 elements (row 2(l%4), col l/4) and (row 2(l%4)+1, col l/4).
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(smem_row)));
}

// Byte offset of 16-byte chunk `chunk` of row `row` in a tile of kRowBytes-byte rows. The chunk index is
// XORed with a row-dependent value so that any 8 consecutive rows read at the same logical chunk (one
// ldmatrix matrix) hit 8 different 16-byte bank groups: rows shorter than 128 bytes share a 128-byte line,
// so the XOR uses the line index.
template <int kRowBytes>
__device__ __forceinline__ int swizzle(int row, int chunk) {
  constexpr int kChunks = kRowBytes / 16;
  static_assert(kChunks == 2 || kChunks == 4 || kChunks == 8 || kChunks == 16, "unsupported row size");
  if constexpr (kChunks >= 8) {
    return row * kRowBytes + ((chunk ^ (row & 7)) << 4);
  } else {
    constexpr int kRowsPerLine = 8 / kChunks;
    return row * kRowBytes + ((chunk ^ ((row / kRowsPerLine) & (kChunks - 1))) << 4);
  }
}

}  // namespace sage::cuda
