#include "sm90_c_api.h"

#include <cmath>
#include <cstring>
#include <string>

#include "../sm90_entry.h"
#include "phases.h"
#include "plan.h"

namespace {

sage::AttentionParams to_params(const SageSm90Call& c) {
  sage::AttentionParams p;
  p.shape = {c.batch, c.q_heads, c.kv_heads, c.q_len, c.kv_len, c.head_dim};
  p.dtype = static_cast<sage::DType>(c.dtype);
  const int64_t* s = c.strides;
  p.q_strides = {s[0], s[1], s[2]};
  p.k_strides = {s[3], s[4], s[5]};
  p.v_strides = {s[6], s[7], s[8]};
  p.out_strides = {s[9], s[10], s[11]};
  p.q = c.q;
  p.k = c.k;
  p.v = c.v;
  p.out = c.out;
  p.attrs.q_num_heads = c.q_heads;
  p.attrs.kv_num_heads = c.kv_heads;
  p.attrs.scale = c.scale;
  p.attrs.is_causal = c.is_causal;
  p.attrs.causal_alignment = static_cast<sage::schema::CausalAlignment>(c.causal_alignment);
  p.attrs.qk_quant = static_cast<sage::schema::QkQuant>(c.qk_quant);
  p.attrs.qk_granularity = static_cast<sage::schema::QkGranularity>(c.qk_granularity);
  p.attrs.smooth_k = c.smooth_k;
  p.attrs.smooth_q = c.smooth_q;
  p.attrs.pv_dtype = static_cast<sage::schema::PvDtype>(c.pv_dtype);
  p.attrs.pv_accum = static_cast<sage::schema::PvAccum>(c.pv_accum);
  p.attrs.kernel = sage::schema::Kernel::kSm90;
  p.softmax_scale = c.scale != 0.f ? c.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
  return p;
}

int report(const std::string& msg, char* err, size_t err_len) {
  if (msg.empty()) return 0;
  if (err != nullptr && err_len > 0) {
    const size_t n = msg.size() < err_len - 1 ? msg.size() : err_len - 1;
    std::memcpy(err, msg.data(), n);
    err[n] = '\0';
  }
  return 1;
}

}  // namespace

extern "C" size_t sage_sm90_workspace_c(const SageSm90Call* call) { return sm90_workspace_bytes(to_params(*call)); }

extern "C" int sage_sm90_can_implement_c(const SageSm90Call* call, char* err, size_t err_len) {
  return report(sm90_can_implement(to_params(*call)), err, err_len);
}

extern "C" int sage_sm90_attention_c(const SageSm90Call* call, void* workspace, size_t workspace_bytes, void* stream,
                                     char* err, size_t err_len) {
  const sage::AttentionParams p = to_params(*call);
  std::string msg = sm90_can_implement(p);
  if (msg.empty()) msg = run_sm90_attention(p, workspace, workspace_bytes, static_cast<cudaStream_t>(stream));
  return report(msg, err, err_len);
}

extern "C" int sage_sm90_run_phase_c(const SageSm90Call* call, void* workspace, size_t workspace_bytes, void* stream,
                                     int phase, char* err, size_t err_len) {
  const sage::AttentionParams p = to_params(*call);
  std::string msg = sm90_can_implement(p);
  if (msg.empty()) {
    msg = sage::sm90::run_sm90_phases(p, workspace, workspace_bytes, static_cast<cudaStream_t>(stream), phase != 2,
                                      phase != 1);
  }
  return report(msg, err, err_len);
}

extern "C" void sage_sm90_plan_c(const SageSm90Call* call, int64_t* out) {
  const sage::sm90::Plan plan = sage::sm90::make_plan(to_params(*call));
  const int64_t v[11] = {plan.head_dim_padded,
                         static_cast<int64_t>(plan.q8),
                         static_cast<int64_t>(plan.k8),
                         static_cast<int64_t>(plan.v8t),
                         static_cast<int64_t>(plan.q_scale),
                         static_cast<int64_t>(plan.k_scale),
                         static_cast<int64_t>(plan.v_scale),
                         static_cast<int64_t>(plan.part_ksum),
                         static_cast<int64_t>(plan.part_vmax),
                         plan.kv_len16,
                         static_cast<int64_t>(plan.total)};
  for (int i = 0; i < 11; ++i) out[i] = v[i];
}
