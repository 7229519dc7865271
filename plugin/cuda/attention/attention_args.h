// What the attention kernel reads: the preprocessed Q/K/V buffers in the workspace, the output view and the
// per-call flags that are cheap to switch at run time. Host-safe (no CUDA syntax).
#pragma once
#include <cstdint>

#include "../common/key_validity.h"

namespace sage::cuda {

// Element type of a general attn_mask read by the mask kernels.
enum class MaskType : int { kNone = 0, kBool = 1, kFloat32 = 2, kFloat16 = 3, kBFloat16 = 4 };

struct AttentionArgs {
  // INT8 (or packed INT4) codes, [b*heads][len_pad][row_bytes], and their fp32 scales, [b*heads][slots].
  const int8_t* q_codes = nullptr;
  const float* q_scales = nullptr;
  const int8_t* k_codes = nullptr;
  const float* k_scales = nullptr;
  // smooth_q: int8 codes of the per-block Q mean, [b*q_heads][q_tiles][head_dim_pad], and their scales.
  const int8_t* qbar_codes = nullptr;
  const float* qbar_scales = nullptr;

  // FP16 P~.V: V as fp16 rows of channels, addressed by (batch, kv head, token) element strides; channel
  // chunks (8 halves) at or past v_valid_chunks and tokens past kv_len are zero-filled while loading.
  // FP8 P~.V: E4M3 codes [b*kv_heads][head_dim_pad][kv_len_pad] (tokens permuted within groups of 16) and
  // v_scales = dV, [b*kv_heads][head_dim_pad].
  const void* v = nullptr;
  int64_t v_batch_stride = 0, v_head_stride = 0, v_token_stride = 0;
  int v_valid_chunks = 0;
  const float* v_scales = nullptr;

  void* out = nullptr;
  int64_t out_batch_stride = 0, out_head_stride = 0, out_token_stride = 0;
  int out_dtype = 0;      // sage::DType
  bool out_vec2 = false;  // two neighbouring channels can be stored as one aligned 2-element vector

  int batch = 0, q_heads = 0, kv_heads = 0, q_len = 0, kv_len = 0, head_dim = 0;
  int q_len_pad = 0, kv_len_pad = 0;  // token rows of the code buffers (multiples of 128 and 64)
  int q_slots = 0, k_slots = 0;       // scale slots per head
  int granularity = 0;                // schema::QkGranularity
  float sm_scale_log2 = 0.f;          // softmax scale * log2(e)
  bool causal = false;
  bool causal_bottom_right = false;  // causal: key j visible from row i when j <= i + L_b - q_len (else j <= i)
  bool smooth_q = false;

  // Valid keys per batch: key_lengths (every kernel: the loop stops at ceil(L_b / 64) blocks) and the per-tile
  // bits of a bool key-padding mask (mask kernels only).
  KeyValidity keys;

  // A general mask (mask kernels only): bool (not key padding) or additive, read tile by tile as
  // mask[b * stride_b + h * stride_h + i * stride_q + j]; broadcast dimensions have stride 0.
  const void* mask = nullptr;
  MaskType mask_type = MaskType::kNone;
  int64_t mask_stride_b = 0, mask_stride_h = 0, mask_stride_q = 0;
  bool mask_vec2 = false;  // the two keys 2t, 2t+1 of a lane load as one aligned 2-element vector
};

}  // namespace sage::cuda
