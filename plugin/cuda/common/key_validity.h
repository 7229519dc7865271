// Which keys of a batch exist (docs/OP_CONTRACT.md, "Masks"): the key_lengths input, clamped to [0, kv_len] where
// it is read (on the device: the host never reads device data), and, with a bool key-padding mask, a bitmask per
// 64-key tile built by the key-validity pass (preprocess/key_validity.cu). Preprocessing zeroes and skips invalid
// K/V rows; the attention kernel stops at end() and masks the rest. Host-safe; the accessors are device code.
#pragma once
#include <cstdint>

namespace sage::cuda {

struct KeyValidity {
  const void* lengths = nullptr;   // key_lengths [batch], int32 or int64, device memory; null: every key < kv_len
  bool lengths_i64 = false;
  const uint64_t* bits = nullptr;  // [batch][tiles]: bit j of word t = key 64t+j valid (mask and length); or null
  const int32_t* stats = nullptr;  // [batch][2]: number of valid keys, last valid key + 1 (with bits only)
  int kv_len = 0;
  int tiles = 0;  // 64-key tiles per batch in `bits`

#if defined(__CUDACC__)
  __host__ __device__ __forceinline__ bool any() const { return lengths != nullptr || bits != nullptr; }

  // L_b: the clamped key_lengths[b] (kv_len without the input). Also the causal bottom_right reference.
  __device__ __forceinline__ int length(int b) const {
    if (lengths == nullptr) return kv_len;
    const int64_t n = lengths_i64 ? static_cast<const int64_t*>(lengths)[b] : static_cast<const int32_t*>(lengths)[b];
    return static_cast<int>(n < 0 ? 0 : n > kv_len ? kv_len : n);
  }
  // Keys at or past end(b) are all invalid: nothing there is read, written or scored.
  __device__ __forceinline__ int end(int b) const { return bits != nullptr ? stats[2 * b + 1] : length(b); }
  __device__ __forceinline__ int count(int b) const { return bits != nullptr ? stats[2 * b] : length(b); }
  // Only meaningful for tok < end(b) (callers bound their loops by end first).
  __device__ __forceinline__ bool valid(int b, int tok) const {
    if (bits == nullptr) return tok < length(b);
    return (bits[static_cast<int64_t>(b) * tiles + tok / 64] >> (tok % 64)) & 1u;
  }
#else
  bool any() const { return lengths != nullptr || bits != nullptr; }
#endif
};

}  // namespace sage::cuda
