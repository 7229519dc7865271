// Host-side launchers of the preprocessing kernels that turn the caller's Q, K, V into the attention kernel's
// operands (docs/OP_CONTRACT.md §1-3, §6): the K channel mean (smooth_k), INT8/INT4 codes and scales of Q and K
// with the contract's groups (plus the smooth-Q block means), and V as padded fp16 rows or as per-channel
// scaled, transposed, token-permuted E4M3. Every launcher only enqueues on `stream` and returns the launch error.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "../common/key_validity.h"
#include "params.h"

namespace sage::cuda {

// A (batch, head, token, channel) view with contiguous channels; strides in elements.
struct TokenView {
  const void* data = nullptr;
  DType dtype = DType::kFloat16;
  int64_t batch_stride = 0, head_stride = 0, token_stride = 0;
  int batch = 0, heads = 0, len = 0, head_dim = 0;
  bool vec8 = false;  // every row start is 8-element (and 16-byte) aligned: 8 channels per vector load
};

// Key-padding masks (bool, (B, Skv) or (B|1, 1, 1, Skv)): bits[b][tile] = valid keys of each 64-key tile (mask
// and key_lengths, clamped), stats[b] = {valid-key count, last valid key + 1}. `lengths` gives key_lengths and
// kv_len/tiles; its bits/stats are ignored. stride_b = 0 broadcasts one mask row over the batch.
cudaError_t launch_key_bits(const void* mask, int64_t stride_b, const KeyValidity& lengths, int batch,
                            uint64_t* bits, int32_t* stats, cudaStream_t stream);

// Per-(batch, head, channel) reduction over tokens, first per split of `tokens_per_split` tokens into
// partials[(b*heads + h) * splits + split][head_dim_pad] (zeros past head_dim). Invalid keys (`keys`, for K
// and V) are left out: a mask or key_lengths removes them from K's mean and V's amax.
enum class ChannelReduce { kSum, kAbsMax };
cudaError_t launch_channel_partials(const TokenView& x, ChannelReduce op, int head_dim_pad, int tokens_per_split,
                                    int splits, const KeyValidity& keys, float* partials, cudaStream_t stream);

// mean[bh][c] = sum of the splits' partial sums / len, or / the valid-key count of the batch with `keys`
// (0 when no key is valid).
cudaError_t launch_mean_finalize(const float* partials, int bh_count, int heads, int splits, int head_dim_pad,
                                 int len, const KeyValidity& keys, float* mean, cudaStream_t stream);

// amax = max of the partial maxima; v_scale = amax / v_range (dV), v_inv = v_range / amax (0 when amax = 0).
cudaError_t launch_v_scale_finalize(const float* partials, int bh_count, int splits, int head_dim_pad,
                                    float v_range, float* v_scale, float* v_inv, cudaStream_t stream);

struct QuantizeArgs {
  TokenView src;
  int head_dim_pad = 128;
  schema::QkGranularity granularity = schema::QkGranularity::kPerThread;
  int qmax = 127;      // 127 (int8) or 7 (int4, two codes per byte, even channel in the low nibble)
  const float* channel_mean = nullptr;  // K: [bh][head_dim_pad] subtracted first (smooth_k), or null
  bool smooth_tile_mean = false;        // Q: subtract the per-128-token mean (smooth_q) ...
  int8_t* tile_mean_codes = nullptr;    // ... and store it as int8 codes [bh][tiles][head_dim_pad]
  float* tile_mean_scales = nullptr;    // ... with one scale per tile, [bh][tiles]
  int8_t* codes = nullptr;              // [bh][len_pad][row_bytes]
  int len_pad = 0;
  float* scales = nullptr;  // [bh][slots]: tiles * groups per tile
  int slots = 0;
  // K only: invalid keys are quantized as zero rows (no mean subtracted, outside the group amax), and tiles
  // at or past the batch's last valid key are skipped (the attention kernel never reads them).
  KeyValidity keys;
};

// Q: tiles of 128 tokens (sage::kBlockQ); K: tiles of 64 tokens (sage::kBlockK).
cudaError_t launch_quantize_q(const QuantizeArgs& args, cudaStream_t stream);
cudaError_t launch_quantize_k(const QuantizeArgs& args, cudaStream_t stream);

// Scale-slot count of one tile, per granularity (the per-head slot count is tiles * this).
int q_groups_per_tile(schema::QkGranularity g);
int k_groups_per_tile(schema::QkGranularity g);

// V -> fp16 rows [bh][len_pad][head_dim_pad], zero padded (FP16 P~.V when V cannot be read in place). Invalid
// keys give zero rows; tiles past the last valid key are skipped.
cudaError_t launch_convert_v_f16(const TokenView& v, int head_dim_pad, int len_pad, const KeyValidity& keys,
                                 void* dst, cudaStream_t stream);

// V -> E4M3 codes e4m3(V * v_inv[c]) transposed to [bh][head_dim_pad][len_pad], tokens of each 16-group stored
// in the order 0,1,8,9,2,3,10,11,4,5,12,13,6,7,14,15 (the FP8 P~ fragment order), zero padded.
cudaError_t launch_quantize_v_fp8(const TokenView& v, int head_dim_pad, int len_pad, const KeyValidity& keys,
                                  const float* v_inv, uint8_t* dst, cudaStream_t stream);

}  // namespace sage::cuda
