// Plain-C entry points of the sm_90a path, for the standalone test library (libsage_sm90.so) that
// tests/gpu_sm90 loads with ctypes. Raw device pointers; element strides per (batch, head, token), the
// channel stride being 1; enums as the schema's integer values (op_schema.gen.h):
//   dtype: 0 float32, 1 float16, 2 bfloat16;  qk_quant: 0 int8, 1 int4;
//   qk_granularity: 0 per_thread, 1 per_warp, 2 per_block;  pv_dtype: 0 fp8_e4m3, 1 fp16;  pv_accum: 0 fp32, 1 fp16;
//   causal_alignment: 0 top_left, 1 bottom_right. No attn_mask / key_lengths here: the path runs them, and they
//   are tested through the whole-op C API (plugin/cuda/c_api.h, tests/gpu/test_masks_gpu.py with kernel "sm90").
// strides[12] = q (batch, head, token), k (...), v (...), out (...).
// Functions returning int give 0 on success, else 1 with a message in err (NUL-terminated, truncated).
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct SageSm90Call {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  int32_t dtype;
  int64_t batch, q_heads, kv_heads, q_len, kv_len, head_dim;
  int64_t strides[12];
  int32_t is_causal, qk_quant, qk_granularity, smooth_k, smooth_q, pv_dtype, pv_accum;
  float scale;
  int32_t causal_alignment;  // 0 top_left, 1 bottom_right
};

__attribute__((visibility("default"))) size_t sage_sm90_workspace_c(const struct SageSm90Call* call);
__attribute__((visibility("default"))) int sage_sm90_can_implement_c(const struct SageSm90Call* call, char* err,
                                                                     size_t err_len);
__attribute__((visibility("default"))) int sage_sm90_attention_c(const struct SageSm90Call* call, void* workspace,
                                                                 size_t workspace_bytes, void* stream, char* err,
                                                                 size_t err_len);

// Test hooks. phase: 0 = all, 1 = quantization passes only, 2 = attention kernel only (workspace from an
// earlier phase-1 run). sage_sm90_plan_c fills out[11] with the workspace layout: padded head dim, then the
// byte offsets of q8, k8, v8t, q_scale, k_scale, v_scale, part_ksum, part_vmax, the V^T row pitch and the total.
__attribute__((visibility("default"))) int sage_sm90_run_phase_c(const struct SageSm90Call* call, void* workspace,
                                                                 size_t workspace_bytes, void* stream, int phase,
                                                                 char* err, size_t err_len);
__attribute__((visibility("default"))) void sage_sm90_plan_c(const struct SageSm90Call* call, int64_t* out);

#ifdef __cplusplus
}
#endif
