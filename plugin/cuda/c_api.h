/* Plain-C entry points to the CUDA runner, exported from the libraries that link sage_cuda, so that Python
 * (sage_export/cuda_api.py, through ctypes) can run it on framework tensors. Every function returns 0 on
 * success, else non-zero with a NUL-terminated message in `error` (at most error_len bytes). */
#ifndef SAGE_CUDA_C_API_H
#define SAGE_CUDA_C_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 2: the *_v2 entry points take the optional inputs (SageCudaMasks); the version 1 ones are unchanged. */
#define SAGE_CUDA_C_API_VERSION 2

/* Phases of sage_cuda_attention_c: preprocessing (smoothing, quantization), the attention kernel, or both. */
#define SAGE_CUDA_PHASE_PREPROCESS 1
#define SAGE_CUDA_PHASE_ATTENTION 2
#define SAGE_CUDA_PHASE_ALL 3

typedef struct SageCudaCall {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  int64_t batch, q_heads, kv_heads, q_len, kv_len, head_dim;
  /* Element strides of (batch, head, token) views with contiguous channels. */
  int64_t q_strides[3], k_strides[3], v_strides[3], out_strides[3];
  int32_t dtype; /* 0 float32, 1 float16, 2 bfloat16 */
  /* Attributes as the generated schema enums number them (sage_export/schema/sage_attention.toml order). */
  int32_t is_causal, qk_quant, qk_granularity, smooth_k, smooth_q, pv_dtype, pv_accum, kernel;
  float scale; /* 0: 1/sqrt(head_dim) */
  int32_t phases;
  void* workspace;
  uint64_t workspace_bytes;
  void* stream; /* cudaStream_t */
} SageCudaCall;

/* The optional inputs attn_mask and key_lengths and the attribute causal_alignment (docs/OP_CONTRACT.md, "Masks"),
 * for the *_v2 entry points; NULL there means none of them (and causal_alignment top_left). */
typedef struct SageCudaMasks {
  const void* attn_mask; /* device memory, or NULL */
  int32_t mask_dtype;    /* 0 float32, 1 float16, 2 bfloat16 (additive), 3 bool (1 byte, non-zero = attend) */
  /* The mask as 4-D (B|1, Hq|1, Sq|1, Skv); a 2-D key-padding mask (B, Skv) is passed as (B, 1, 1, Skv). A bool
   * mask with dims 1 and 2 of size 1 is a key-padding mask (its keys leave K's mean and V's scales too). */
  int64_t mask_dims[4];
  int64_t mask_strides[3]; /* element strides of the first three dimensions (ignored where the size is 1) */
  const void* key_lengths; /* int32/int64 [batch] in device memory, or NULL; clamped to [0, Skv] on the device */
  int32_t key_lengths_int64;
  int32_t causal_alignment; /* 0 top_left, 1 bottom_right */
} SageCudaMasks;

int sage_cuda_c_api_version(void);
int sage_cuda_workspace_bytes_c(const SageCudaCall* call, uint64_t* bytes, char* error, uint64_t error_len);
int sage_cuda_can_implement_c(const SageCudaCall* call, char* error, uint64_t error_len);
/* Writes a one-line description of the kernel configuration the call would run into `text`. */
int sage_cuda_describe_c(const SageCudaCall* call, char* text, uint64_t text_len);
int sage_cuda_attention_c(const SageCudaCall* call, char* error, uint64_t error_len);
/* The same with the optional inputs (masks may be NULL). */
int sage_cuda_workspace_bytes_v2_c(const SageCudaCall* call, const SageCudaMasks* masks, uint64_t* bytes, char* error,
                                   uint64_t error_len);
int sage_cuda_can_implement_v2_c(const SageCudaCall* call, const SageCudaMasks* masks, char* error,
                                 uint64_t error_len);
int sage_cuda_describe_v2_c(const SageCudaCall* call, const SageCudaMasks* masks, char* text, uint64_t text_len);
int sage_cuda_attention_v2_c(const SageCudaCall* call, const SageCudaMasks* masks, char* error, uint64_t error_len);

/* Test hooks: float -> E4M3 codes on the device, method 0 = the attention kernel's packed
 * cvt.rn.satfinite.e4m3x2.f32 (sm_89+), 1 = cuda_fp8.h as used by the V quantizer; and on the host with
 * sage/numerics.h. */
int sage_cuda_e4m3_c(const float* in, uint8_t* out, int64_t n, int32_t method, void* stream, char* error,
                     uint64_t error_len);
void sage_host_e4m3_c(const float* in, uint8_t* out, int64_t n);

#ifdef __cplusplus
}
#endif

#endif /* SAGE_CUDA_C_API_H */
