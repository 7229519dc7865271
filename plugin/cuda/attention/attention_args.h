// What the attention kernel reads: the preprocessed Q/K/V buffers in the workspace, the output view and the
// per-call flags that are cheap to switch at run time. Host-safe (no CUDA syntax).
#pragma once
#include <cstdint>

namespace sage::cuda {

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
  bool smooth_q = false;
};

}  // namespace sage::cuda
