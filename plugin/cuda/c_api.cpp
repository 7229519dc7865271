// extern "C" wrappers of the CUDA runner for ctypes (see c_api.h). These are the only symbols of sage_cuda
// with default visibility.
#include "c_api.h"

#include <cstring>
#include <string>

#include "device_arch.h"
#include "e4m3_probe.h"
#include "numerics.h"
#include "params.h"
#include "plan.h"
#include "runner.h"
#include "runner_phases.h"
#include "sm90_entry.h"

#define SAGE_C_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

int report(const std::string& message, char* buffer, uint64_t len) {
  if (buffer != nullptr && len > 0) {
    const size_t n = message.size() < len - 1 ? message.size() : static_cast<size_t>(len - 1);
    std::memcpy(buffer, message.data(), n);
    buffer[n] = '\0';
  }
  return message.empty() ? 0 : 1;
}

sage::Strides strides_of(const int64_t (&s)[3]) {
  sage::Strides st;
  st.batch = s[0];
  st.head = s[1];
  st.token = s[2];
  return st;
}

// Builds AttentionParams; "" or the reason the call's numbers are not valid enum values.
std::string to_params(const SageCudaCall* c, sage::AttentionParams* p) {
  if (c == nullptr) return "null call";
  namespace sc = sage::schema;
  auto in_range = [](int32_t v, int n) { return v >= 0 && v < n; };
  if (!in_range(c->dtype, 3)) return "dtype must be 0 (float32), 1 (float16) or 2 (bfloat16)";
  if (!in_range(c->qk_quant, 2) || !in_range(c->qk_granularity, 3) || !in_range(c->pv_dtype, 2) ||
      !in_range(c->pv_accum, 2) || !in_range(c->kernel, 4) || !in_range(c->is_causal, 2) ||
      !in_range(c->smooth_k, 2) || !in_range(c->smooth_q, 2)) {
    return "an attribute value is out of range";
  }
  p->shape.batch = c->batch;
  p->shape.q_heads = c->q_heads;
  p->shape.kv_heads = c->kv_heads;
  p->shape.q_len = c->q_len;
  p->shape.kv_len = c->kv_len;
  p->shape.head_dim = c->head_dim;
  p->dtype = static_cast<sage::DType>(c->dtype);
  p->q_strides = strides_of(c->q_strides);
  p->k_strides = strides_of(c->k_strides);
  p->v_strides = strides_of(c->v_strides);
  p->out_strides = strides_of(c->out_strides);
  p->q = c->q;
  p->k = c->k;
  p->v = c->v;
  p->out = c->out;
  p->attrs.q_num_heads = c->q_heads;
  p->attrs.kv_num_heads = c->kv_heads;
  p->attrs.scale = c->scale;
  p->attrs.is_causal = c->is_causal;
  p->attrs.qk_quant = static_cast<sc::QkQuant>(c->qk_quant);
  p->attrs.qk_granularity = static_cast<sc::QkGranularity>(c->qk_granularity);
  p->attrs.smooth_k = c->smooth_k;
  p->attrs.smooth_q = c->smooth_q;
  p->attrs.pv_dtype = static_cast<sc::PvDtype>(c->pv_dtype);
  p->attrs.pv_accum = static_cast<sc::PvAccum>(c->pv_accum);
  p->attrs.kernel = static_cast<sc::Kernel>(c->kernel);
  p->softmax_scale = 0.f;  // resolved by the plan from attrs.scale / head_dim
  return {};
}

// The optional inputs into p->mask / p->key_lengths / causal_alignment; "" or what is wrong.
std::string add_masks(const SageCudaMasks* m, sage::AttentionParams* p) {
  if (m == nullptr) return {};
  if (m->causal_alignment != 0 && m->causal_alignment != 1) return "causal_alignment must be 0 or 1";
  p->attrs.causal_alignment = static_cast<sage::schema::CausalAlignment>(m->causal_alignment);
  if (m->key_lengths != nullptr) {
    p->key_lengths.data = m->key_lengths;
    p->key_lengths.is_int64 = m->key_lengths_int64 != 0;
  }
  if (m->attn_mask == nullptr) return {};
  sage::MaskDesc& d = p->mask;
  if (m->mask_dtype == 3) {
    d.kind = sage::MaskDesc::Kind::kBool;
  } else if (m->mask_dtype >= 0 && m->mask_dtype < 3) {
    d.kind = sage::MaskDesc::Kind::kAdditive;
    d.dtype = static_cast<sage::DType>(m->mask_dtype);
  } else {
    return "attn_mask dtype must be 0 (float32), 1 (float16), 2 (bfloat16) or 3 (bool)";
  }
  const sage::AttentionShape& s = p->shape;
  const int64_t want[4] = {s.batch, s.q_heads, s.q_len, s.kv_len};
  for (int i = 0; i < 4; ++i) {
    if (m->mask_dims[i] != want[i] && !(i < 3 && m->mask_dims[i] == 1)) {
      return "attn_mask dimension " + std::to_string(i) + " is " + std::to_string(m->mask_dims[i]) + "; it must be " +
             (i < 3 ? "1 or " : "") + std::to_string(want[i]) + " (masks broadcast to (B, Hq, Sq, Skv))";
    }
  }
  d.data = m->attn_mask;
  d.stride_b = m->mask_dims[0] == 1 ? 0 : m->mask_strides[0];
  d.stride_h = m->mask_dims[1] == 1 ? 0 : m->mask_strides[1];
  d.stride_q = m->mask_dims[2] == 1 ? 0 : m->mask_strides[2];
  d.key_padding = m->mask_dims[1] == 1 && m->mask_dims[2] == 1;
  return {};
}

std::string to_params(const SageCudaCall* c, const SageCudaMasks* m, sage::AttentionParams* p) {
  if (std::string err = to_params(c, p); !err.empty()) return err;
  return add_masks(m, p);
}

}  // namespace

SAGE_C_EXPORT int sage_cuda_c_api_version(void) { return SAGE_CUDA_C_API_VERSION; }

SAGE_C_EXPORT int sage_cuda_workspace_bytes_v2_c(const SageCudaCall* call, const SageCudaMasks* masks,
                                                 uint64_t* bytes, char* error, uint64_t error_len) {
  sage::AttentionParams p;
  if (std::string err = to_params(call, masks, &p); !err.empty()) return report(err, error, error_len);
  *bytes = sage::cuda_workspace_bytes(p);
  return report({}, error, error_len);
}

SAGE_C_EXPORT int sage_cuda_can_implement_v2_c(const SageCudaCall* call, const SageCudaMasks* masks, char* error,
                                               uint64_t error_len) {
  sage::AttentionParams p;
  if (std::string err = to_params(call, masks, &p); !err.empty()) return report(err, error, error_len);
  return report(sage::cuda_can_implement(p), error, error_len);
}

SAGE_C_EXPORT int sage_cuda_describe_v2_c(const SageCudaCall* call, const SageCudaMasks* masks, char* text,
                                          uint64_t text_len) {
  sage::AttentionParams p;
  if (std::string err = to_params(call, masks, &p); !err.empty()) return report(err, text, text_len);
  if (sage::cuda::runs_on_sm90(p)) {
    if (std::string err = sm90_can_implement(p); !err.empty()) return report(err, text, text_len);
    report(sm90_describe(p), text, text_len);
    return 0;
  }
  sage::cuda::Plan plan;
  if (std::string err = sage::cuda::plan_for_current_device(p, &plan); !err.empty()) {
    return report(err, text, text_len);
  }
  report(sage::cuda::describe(plan), text, text_len);
  return 0;
}

SAGE_C_EXPORT int sage_cuda_attention_v2_c(const SageCudaCall* call, const SageCudaMasks* masks, char* error,
                                           uint64_t error_len) {
  sage::AttentionParams p;
  if (std::string err = to_params(call, masks, &p); !err.empty()) return report(err, error, error_len);
  const int phases = call->phases == 0 ? sage::cuda::kPhaseAll : call->phases;
  if (phases == sage::cuda::kPhaseAll) {  // the whole op: the same dispatch as ORT and TensorRT (incl. sm90)
    return report(sage::run_cuda_attention(p, call->workspace, call->workspace_bytes, call->stream), error, error_len);
  }
  return report(sage::cuda::run_phases(p, call->workspace, call->workspace_bytes, call->stream, phases), error,
                error_len);
}

// Version 1: no optional inputs.
SAGE_C_EXPORT int sage_cuda_workspace_bytes_c(const SageCudaCall* call, uint64_t* bytes, char* error,
                                              uint64_t error_len) {
  return sage_cuda_workspace_bytes_v2_c(call, nullptr, bytes, error, error_len);
}

SAGE_C_EXPORT int sage_cuda_can_implement_c(const SageCudaCall* call, char* error, uint64_t error_len) {
  return sage_cuda_can_implement_v2_c(call, nullptr, error, error_len);
}

SAGE_C_EXPORT int sage_cuda_describe_c(const SageCudaCall* call, char* text, uint64_t text_len) {
  return sage_cuda_describe_v2_c(call, nullptr, text, text_len);
}

SAGE_C_EXPORT int sage_cuda_attention_c(const SageCudaCall* call, char* error, uint64_t error_len) {
  return sage_cuda_attention_v2_c(call, nullptr, error, error_len);
}

SAGE_C_EXPORT int sage_cuda_e4m3_c(const float* in, uint8_t* out, int64_t n, int32_t method, void* stream,
                                   char* error, uint64_t error_len) {
  if (method == 0) {
    std::string err;
    const int arch = sage::cuda::current_device_arch(&err);
    if (arch == 0) return report(err, error, error_len);
    if (arch < 89) return report("method 0 (packed PTX cvt) needs sm_89 or newer", error, error_len);
  }
  const cudaError_t e = sage::cuda::launch_e4m3_probe(in, out, n, method, static_cast<cudaStream_t>(stream));
  return report(e == cudaSuccess ? std::string() : std::string("e4m3 probe launch failed: ") + cudaGetErrorString(e),
                error, error_len);
}

SAGE_C_EXPORT void sage_host_e4m3_c(const float* in, uint8_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = sage::num::float_to_e4m3(in[i]);
}
