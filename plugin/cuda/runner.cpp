// sage/runner.h on CUDA: plan (validation, sizes, workspace layout), then the preprocessing launches and the
// attention kernel, all on the caller's stream. No allocation, synchronization or device reads, so the whole
// call can be captured in a CUDA graph.
#include "runner.h"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>
#include <mutex>

#include "attention/launch.h"
#include "device_arch.h"
#include "plan.h"
#include "preprocess/preprocess.h"
#include "quant_groups.h"
#include "runner_phases.h"
#include "sm90_entry.h"

namespace sage::cuda {

namespace {

std::string launch_error(const char* what, cudaError_t err) {
  return std::string("SageAttention CUDA: ") + what + " failed: " + cudaGetErrorName(err) + ": " +
         cudaGetErrorString(err);
}

bool aligned(const void* ptr, size_t bytes) { return reinterpret_cast<uintptr_t>(ptr) % bytes == 0; }

TokenView make_view(const void* data, const Strides& st, DType dtype, int64_t batch, int64_t heads, int64_t len,
                    int64_t head_dim) {
  TokenView v;
  v.data = data;
  v.dtype = dtype;
  v.batch_stride = st.batch;
  v.head_stride = st.head;
  v.token_stride = st.token;
  v.batch = static_cast<int>(batch);
  v.heads = static_cast<int>(heads);
  v.len = static_cast<int>(len);
  v.head_dim = static_cast<int>(head_dim);
  v.vec8 = head_dim % 8 == 0 && st.batch % 8 == 0 && st.head % 8 == 0 && st.token % 8 == 0 && aligned(data, 16);
  return v;
}

void log_fp8_fallback_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::fprintf(stderr,
                 "SageAttention CUDA: pv_dtype 'fp8_e4m3' has no sm80 kernel (no FP8 MMA before sm_89); running "
                 "fp16 P~.V with the same pv_accum instead\n");
  });
}

template <typename T>
T* at(void* base, size_t offset) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + offset);
}

// Valid keys per batch: key_lengths as given (clamped where the kernels read it) and, with a bool key-padding
// mask, the bits and stats the key-validity pass writes into the workspace.
KeyValidity key_validity(const AttentionParams& p, const Plan& pl, void* ws) {
  KeyValidity keys;
  keys.lengths = p.key_lengths.data;
  keys.lengths_i64 = p.key_lengths.is_int64;
  keys.kv_len = static_cast<int>(p.shape.kv_len);
  keys.tiles = pl.kv_tiles;
  if (pl.mask == MaskMode::kKeyPadding) {
    keys.bits = at<uint64_t>(ws, pl.ws.key_bits);
    keys.stats = at<int32_t>(ws, pl.ws.key_stats);
  }
  return keys;
}

std::string run_preprocess(const AttentionParams& p, const Plan& pl, void* ws, cudaStream_t stream) {
  const AttentionShape& s = p.shape;
  const schema::Attributes& attrs = p.attrs;
  const WorkspaceLayout& w = pl.ws;
  const int bkv = static_cast<int>(s.batch * s.kv_heads);
  const TokenView q = make_view(p.q, p.q_strides, p.dtype, s.batch, s.q_heads, s.q_len, s.head_dim);
  const TokenView k = make_view(p.k, p.k_strides, p.dtype, s.batch, s.kv_heads, s.kv_len, s.head_dim);
  const TokenView v = make_view(p.v, p.v_strides, p.dtype, s.batch, s.kv_heads, s.kv_len, s.head_dim);
  const int qmax = qmax_of(attrs.qk_quant);
  const KeyValidity keys = key_validity(p, pl, ws);
  cudaError_t err;

  if (pl.mask == MaskMode::kKeyPadding) {  // first: every K/V pass below reads its bits and stats
    err = launch_key_bits(p.mask.data, p.mask.stride_b, keys, static_cast<int>(s.batch), at<uint64_t>(ws, w.key_bits),
                          at<int32_t>(ws, w.key_stats), stream);
    if (err != cudaSuccess) return launch_error("key-padding mask bits", err);
  }

  if (attrs.smooth_k) {
    err = launch_channel_partials(k, ChannelReduce::kSum, pl.head_dim_pad, pl.tokens_per_split, pl.splits, keys,
                                  at<float>(ws, w.partials), stream);
    if (err != cudaSuccess) return launch_error("K channel sums", err);
    err = launch_mean_finalize(at<float>(ws, w.partials), bkv, k.heads, pl.splits, pl.head_dim_pad, k.len, keys,
                               at<float>(ws, w.k_mean), stream);
    if (err != cudaSuccess) return launch_error("K channel mean", err);
  }

  QuantizeArgs kq;
  kq.src = k;
  kq.head_dim_pad = pl.head_dim_pad;
  kq.granularity = attrs.qk_granularity;
  kq.qmax = qmax;
  kq.channel_mean = attrs.smooth_k ? at<float>(ws, w.k_mean) : nullptr;
  kq.codes = at<int8_t>(ws, w.k_codes);
  kq.len_pad = pl.kv_len_pad;
  kq.scales = at<float>(ws, w.k_scales);
  kq.slots = pl.k_slots;
  kq.keys = keys;
  err = launch_quantize_k(kq, stream);
  if (err != cudaSuccess) return launch_error("K quantization", err);

  if (s.q_len > 0) {
    QuantizeArgs qq;
    qq.src = q;
    qq.head_dim_pad = pl.head_dim_pad;
    qq.granularity = attrs.qk_granularity;
    qq.qmax = qmax;
    qq.smooth_tile_mean = attrs.smooth_q != 0;
    qq.tile_mean_codes = attrs.smooth_q ? at<int8_t>(ws, w.qbar_codes) : nullptr;
    qq.tile_mean_scales = attrs.smooth_q ? at<float>(ws, w.qbar_scales) : nullptr;
    qq.codes = at<int8_t>(ws, w.q_codes);
    qq.len_pad = pl.q_len_pad;
    qq.scales = at<float>(ws, w.q_scales);
    qq.slots = pl.q_slots;
    err = launch_quantize_q(qq, stream);
    if (err != cudaSuccess) return launch_error("Q quantization", err);
  }

  if (pl.fp8_pv) {
    err = launch_channel_partials(v, ChannelReduce::kAbsMax, pl.head_dim_pad, pl.tokens_per_split, pl.splits, keys,
                                  at<float>(ws, w.partials), stream);
    if (err != cudaSuccess) return launch_error("V channel amax", err);
    err = launch_v_scale_finalize(at<float>(ws, w.partials), bkv, pl.splits, pl.head_dim_pad, pl.v_range,
                                  at<float>(ws, w.v_scale), at<float>(ws, w.v_inv), stream);
    if (err != cudaSuccess) return launch_error("V scales", err);
    err = launch_quantize_v_fp8(v, pl.head_dim_pad, pl.kv_len_pad, keys, at<float>(ws, w.v_inv),
                                at<uint8_t>(ws, w.v), stream);
    if (err != cudaSuccess) return launch_error("V fp8 quantization", err);
  } else if (!pl.v_direct) {
    err = launch_convert_v_f16(v, pl.head_dim_pad, pl.kv_len_pad, keys, at<void>(ws, w.v), stream);
    if (err != cudaSuccess) return launch_error("V fp16 conversion", err);
  }
  return {};
}

std::string run_attention_kernel(const AttentionParams& p, const Plan& pl, void* ws, cudaStream_t stream) {
  const AttentionShape& s = p.shape;
  const WorkspaceLayout& w = pl.ws;
  AttentionArgs a;
  a.q_codes = at<int8_t>(ws, w.q_codes);
  a.q_scales = at<float>(ws, w.q_scales);
  a.k_codes = at<int8_t>(ws, w.k_codes);
  a.k_scales = at<float>(ws, w.k_scales);
  if (p.attrs.smooth_q) {
    a.qbar_codes = at<int8_t>(ws, w.qbar_codes);
    a.qbar_scales = at<float>(ws, w.qbar_scales);
  }
  const int64_t dp = pl.head_dim_pad;
  if (pl.fp8_pv) {
    a.v = at<void>(ws, w.v);
    a.v_scales = at<float>(ws, w.v_scale);
  } else if (pl.v_direct) {
    a.v = p.v;
    a.v_batch_stride = p.v_strides.batch;
    a.v_head_stride = p.v_strides.head;
    a.v_token_stride = p.v_strides.token;
    a.v_valid_chunks = static_cast<int>(s.head_dim / 8);
  } else {
    a.v = at<void>(ws, w.v);
    a.v_token_stride = dp;
    a.v_head_stride = dp * pl.kv_len_pad;
    a.v_batch_stride = a.v_head_stride * s.kv_heads;
    a.v_valid_chunks = static_cast<int>(dp / 8);
  }
  a.out = p.out;
  a.out_batch_stride = p.out_strides.batch;
  a.out_head_stride = p.out_strides.head;
  a.out_token_stride = p.out_strides.token;
  a.out_dtype = static_cast<int>(p.dtype);
  const int64_t es = element_size(p.dtype);
  a.out_vec2 = s.head_dim % 2 == 0 && p.out_strides.batch % 2 == 0 && p.out_strides.head % 2 == 0 &&
               p.out_strides.token % 2 == 0 && aligned(p.out, 2 * static_cast<size_t>(es));
  a.batch = static_cast<int>(s.batch);
  a.q_heads = static_cast<int>(s.q_heads);
  a.kv_heads = static_cast<int>(s.kv_heads);
  a.q_len = static_cast<int>(s.q_len);
  a.kv_len = static_cast<int>(s.kv_len);
  a.head_dim = static_cast<int>(s.head_dim);
  a.q_len_pad = pl.q_len_pad;
  a.kv_len_pad = pl.kv_len_pad;
  a.q_slots = pl.q_slots;
  a.k_slots = pl.k_slots;
  a.granularity = static_cast<int>(p.attrs.qk_granularity);
  a.sm_scale_log2 = pl.softmax_scale * 1.4426950408889634f;
  a.causal = p.attrs.is_causal != 0;
  a.causal_bottom_right = p.attrs.causal_alignment == schema::CausalAlignment::kBottomRight;
  a.smooth_q = p.attrs.smooth_q != 0;
  a.keys = key_validity(p, pl, ws);
  if (pl.mask == MaskMode::kGeneral) {
    const MaskDesc& m = p.mask;
    a.mask = m.data;
    a.mask_type = m.kind == MaskDesc::Kind::kBool   ? MaskType::kBool
                  : m.dtype == DType::kFloat32      ? MaskType::kFloat32
                  : m.dtype == DType::kFloat16      ? MaskType::kFloat16
                                                    : MaskType::kBFloat16;
    a.mask_stride_b = m.stride_b;
    a.mask_stride_h = m.stride_h;
    a.mask_stride_q = m.stride_q;
    const size_t mes = m.kind == MaskDesc::Kind::kBool ? 1 : static_cast<size_t>(element_size(m.dtype));
    a.mask_vec2 = m.stride_b % 2 == 0 && m.stride_h % 2 == 0 && m.stride_q % 2 == 0 && aligned(m.data, 2 * mes);
  }

  AttentionConfig config;
  config.head_dim = pl.head_dim_pad;
  config.int4 = pl.int4;
  config.fp8_pv = pl.fp8_pv;
  config.accum_f16 = pl.accum_f16;
  config.masks = pl.mask != MaskMode::kNone;
  const cudaError_t err = dispatch_attention(config, a, stream);
  if (err != cudaSuccess) return launch_error("attention kernel launch", err);
  return {};
}

}  // namespace

std::string plan_for_current_device(const AttentionParams& p, Plan* plan) {
  std::string err;
  const int arch = current_device_arch(&err);
  if (arch == 0) return "SageAttention CUDA: " + err;
  return make_plan(p, arch, plan);
}

std::string run_phases(const AttentionParams& p, void* workspace, size_t workspace_bytes, void* stream_ptr,
                       int phases) {
  Plan pl;
  if (std::string err = plan_for_current_device(p, &pl); !err.empty()) return err;
  if (p.shape.q_len == 0) return {};  // empty query: empty output, nothing to launch
  if (pl.fp8_fallback) log_fp8_fallback_once();
  if (workspace_bytes < pl.ws.total) {
    return "SageAttention CUDA: workspace has " + std::to_string(workspace_bytes) + " bytes; this call needs " +
           std::to_string(pl.ws.total) + " (cuda_workspace_bytes)";
  }
  if (!aligned(workspace, 256)) return "SageAttention CUDA: workspace must be 256-byte aligned";
  if (!p.q || !p.k || !p.v || !p.out) return "SageAttention CUDA: null query, key, value or output pointer";
  if (p.mask.kind != MaskDesc::Kind::kNone && p.mask.data == nullptr) return "SageAttention CUDA: null attn_mask";
  if (pl.v_direct && !aligned(p.v, 16)) {
    return "SageAttention CUDA: the fp16 P~.V path reads value in place and needs it 16-byte aligned";
  }
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (phases & kPhasePreprocess) {
    if (std::string err = run_preprocess(p, pl, workspace, stream); !err.empty()) return err;
  }
  if (phases & kPhaseAttention) {
    if (std::string err = run_attention_kernel(p, pl, workspace, stream); !err.empty()) return err;
  }
  return {};
}

}  // namespace sage::cuda

namespace sage {

namespace cuda {

bool runs_on_sm90(const AttentionParams& p) {
  if (p.attrs.kernel == schema::Kernel::kSm90) return true;
  if (p.attrs.kernel != schema::Kernel::kAuto) return false;
  std::string err;
  return current_device_arch(&err) == 90 && sm90_can_implement(p).empty();
}

}  // namespace cuda

namespace {

bool use_sm90(const AttentionParams& p) { return cuda::runs_on_sm90(p); }

}  // namespace

size_t cuda_workspace_bytes(const AttentionParams& p) {
  if (use_sm90(p)) return sm90_workspace_bytes(p);
  cuda::Plan pl;
  if (cuda::plan_for_current_device(p, &pl).empty()) return pl.ws.total;
  // No usable device (or invalid params, which run_cuda_attention will report): the larger of both paths.
  size_t bytes = 0;
  for (int arch : {80, 89}) {
    if (cuda::make_plan(p, arch, &pl).empty() && pl.ws.total > bytes) bytes = pl.ws.total;
  }
  return bytes;
}

std::string cuda_can_implement(const AttentionParams& p) {
  if (use_sm90(p)) return sm90_can_implement(p);
  cuda::Plan pl;
  return cuda::plan_for_current_device(p, &pl);
}

std::string run_cuda_attention(const AttentionParams& p, void* workspace, size_t workspace_bytes, void* stream) {
  if (use_sm90(p)) return run_sm90_attention(p, workspace, workspace_bytes, static_cast<cudaStream_t>(stream));
  return cuda::run_phases(p, workspace, workspace_bytes, stream, cuda::kPhaseAll);
}

}  // namespace sage
