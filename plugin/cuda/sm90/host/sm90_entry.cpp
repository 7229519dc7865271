// Host orchestration of the sm_90a path: validation, workspace carving, tensor maps, three launches (four with a
// bool key-padding mask: the shared key-validity pass, plugin/cuda/preprocess/key_validity.cu, runs first).
#include "../sm90_entry.h"

#include <cuda.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "../../preprocess/preprocess.h"
#include "launch.h"
#include "phases.h"
#include "plan.h"
#include "quant_groups.h"
#include "tensor_map.h"

namespace sage::sm90 {
namespace {

// Documented fallbacks (docs/OP_CONTRACT.md, "The GPU"): each is logged once per process.
void log_once(std::atomic<bool>& done, const char* msg) {
  if (!done.exchange(true)) std::fprintf(stderr, "[SageAttention sm90] %s\n", msg);
}
std::atomic<bool> g_logged_int4{false};
std::atomic<bool> g_logged_fp16_accum{false};

bool aligned16(const void* ptr, const Strides& s, int64_t elem) {
  const int64_t b = elem;
  return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && (s.batch * b) % 16 == 0 && (s.head * b) % 16 == 0 &&
         (s.token * b) % 16 == 0;
}

float resolved_scale(const AttentionParams& p) {
  if (p.softmax_scale != 0.f) return p.softmax_scale;
  if (p.attrs.scale != 0.f) return p.attrs.scale;
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.shape.head_dim)));
}

std::string cuda_error(const char* what, cudaError_t e) {
  return std::string("sm90 ") + what + " launch failed: " + cudaGetErrorString(e);
}

// Test and benchmark knob: SAGE_SM90_KV_CLUSTER=0 keeps the two quantization passes for every call (read per call).
bool kv_cluster_allowed() {
  const char* v = std::getenv("SAGE_SM90_KV_CLUSTER");
  return v == nullptr || v[0] != '0';
}

// attn_mask as the shape resolver (plugin/core/shape.cpp) or the C API builds it; "" or what is wrong.
std::string check_mask(const MaskDesc& m) {
  if (m.kind == MaskDesc::Kind::kNone) return {};
  if (m.kind != MaskDesc::Kind::kBool && m.kind != MaskDesc::Kind::kAdditive) {
    return "kernel 'sm90': attn_mask has an unknown kind (allowed: bool, additive)";
  }
  if (m.kind == MaskDesc::Kind::kAdditive && m.dtype != DType::kFloat32 && m.dtype != DType::kFloat16 &&
      m.dtype != DType::kBFloat16) {
    return "kernel 'sm90': an additive attn_mask must be float32, float16 or bfloat16";
  }
  if (m.stride_b < 0 || m.stride_h < 0 || m.stride_q < 0) return "kernel 'sm90': attn_mask strides must be >= 0";
  return {};
}

// Valid keys per batch as the kernels read them (key_lengths stay on the device; a key-padding mask's bits and
// stats are written into the workspace by the key-validity pass).
cuda::KeyValidity key_validity(const AttentionParams& p, const Plan& plan, uint8_t* ws) {
  cuda::KeyValidity keys;
  keys.lengths = p.key_lengths.data;
  keys.lengths_i64 = p.key_lengths.is_int64;
  keys.kv_len = static_cast<int>(p.shape.kv_len);
  keys.tiles = plan.key_tiles;
  if (plan.key_padding) {
    keys.bits = reinterpret_cast<const uint64_t*>(ws + plan.key_bits);
    keys.stats = reinterpret_cast<const int32_t*>(ws + plan.key_stats);
  }
  return keys;
}

}  // namespace
}  // namespace sage::sm90

size_t sm90_workspace_bytes(const sage::AttentionParams& p) {
  if (p.shape.q_len == 0) return 0;
  return sage::sm90::make_plan(p).total;
}

std::string sm90_can_implement(const sage::AttentionParams& p) {
  using namespace sage;
  const AttentionShape& s = p.shape;
  if (s.head_dim < 1 || s.head_dim > 128) {
    return "kernel 'sm90' supports head_dim 1..128 (padded to 64 or 128), got head_dim=" + std::to_string(s.head_dim);
  }
  if (p.attrs.pv_dtype != schema::PvDtype::kFp8E4m3) {
    return "kernel 'sm90' runs pv_dtype 'fp8_e4m3' only (allowed: 'fp8_e4m3'); pv_dtype='fp16' needs kernel 'sm80' or 'sm89'";
  }
  if (p.attrs.smooth_q != 0) {
    return "kernel 'sm90' does not implement smooth_q (allowed: 0); smooth_q=1 needs kernel 'sm80' or 'sm89'";
  }
  if (std::string err = sage::sm90::check_mask(p.mask); !err.empty()) return err;
  if (s.q_heads < 1 || s.kv_heads < 1 || s.q_heads % s.kv_heads != 0) {
    return "kernel 'sm90' needs q_heads to be a positive multiple of kv_heads";
  }
  // TMA coordinates and grid dimensions are 32-bit; keep every extent well inside.
  constexpr int64_t kMaxExtent = int64_t{1} << 30;
  if (s.q_len >= kMaxExtent || s.kv_len >= kMaxExtent || s.batch * s.q_heads >= 65535 * int64_t{65535} ||
      s.q_heads > 65535 || s.batch > 65535 || s.kv_len < 1) {
    return "kernel 'sm90': shape out of range (needs 1 <= kv_len < 2^30, q_len < 2^30, q_heads <= 65535, batch <= 65535)";
  }
  int dev = 0, major = 0, minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
    cudaGetLastError();
    return "kernel 'sm90': no usable CUDA device";
  }
  if (major != 9 || minor != 0) {
    return "kernel 'sm90' needs an sm_90 GPU (compute capability 9.0, H100/H200); this device is " +
           std::to_string(major) + "." + std::to_string(minor);
  }
  cudaFuncAttributes fa{};
  if (cudaFuncGetAttributes(&fa, sage::sm90::sm90_probe_kernel()) != cudaSuccess || fa.binaryVersion != 90) {
    cudaGetLastError();
    return "kernel 'sm90': this build carries no sm_90a code (build plugin/cuda/sm90 with CUDA architecture 90a)";
  }
  return {};
}

std::string sm90_describe(const sage::AttentionParams& p) {
  const sage::sm90::Plan plan = sage::sm90::make_plan(p);
  std::string d = "sm90 (Hopper TMA + wgmma kernel, plugin/cuda/sm90)";
  if (p.key_lengths.data != nullptr) d += ", key_lengths";
  if (plan.key_padding) d += ", key-padding mask (masked kernel: key bits per KV block)";
  if (plan.general_mask) d += ", general attn_mask (masked kernel: read per KV block)";
  return d;
}

std::string run_sm90_attention(const sage::AttentionParams& p, void* workspace, size_t bytes, cudaStream_t stream) {
  return sage::sm90::run_sm90_phases(p, workspace, bytes, stream, true, true);
}

std::string sage::sm90::run_sm90_phases(const sage::AttentionParams& p, void* workspace, size_t bytes,
                                        cudaStream_t stream, bool quantize, bool attend) {
  using namespace sage;
  const AttentionShape& s = p.shape;
  if (s.q_len == 0) return {};
  if (s.head_dim < 1 || s.head_dim > 128 || p.attrs.pv_dtype != schema::PvDtype::kFp8E4m3 || p.attrs.smooth_q != 0 ||
      !check_mask(p.mask).empty()) {
    return sm90_can_implement(p);
  }
  if (p.mask.kind != MaskDesc::Kind::kNone && p.mask.data == nullptr) return "sm90: null attn_mask";
  const Plan plan = make_plan(p);
  if (workspace == nullptr || bytes < plan.total) {
    return "sm90: workspace of " + std::to_string(bytes) + " bytes is smaller than the " + std::to_string(plan.total) +
           " bytes sm90_workspace_bytes() asks for";
  }
  if (reinterpret_cast<uintptr_t>(workspace) % 256 != 0) return "sm90: workspace must be 256-byte aligned";
  if (p.attrs.qk_quant == schema::QkQuant::kInt4) {
    log_once(g_logged_int4, "qk_quant='int4' runs as int8 on the sm90 path (no INT4 wgmma; more accurate)");
  }
  if (p.attrs.pv_accum == schema::PvAccum::kFp16) {
    log_once(g_logged_fp16_accum,
             "pv_accum='fp16' runs with the FP8 wgmma's fp32 accumulator on the sm90 path (V range 2.25 kept; "
             "more accurate)");
  }

  auto* ws = static_cast<uint8_t*>(workspace);
  const int dp = plan.head_dim_padded;
  const int64_t elem = element_size(p.dtype);
  const float sigma = resolved_scale(p);

  PrepassParams pp{};
  pp.q = p.q;
  pp.k = p.k;
  pp.v = p.v;
  pp.q_batch_stride = p.q_strides.batch;
  pp.q_head_stride = p.q_strides.head;
  pp.q_token_stride = p.q_strides.token;
  pp.k_batch_stride = p.k_strides.batch;
  pp.k_head_stride = p.k_strides.head;
  pp.k_token_stride = p.k_strides.token;
  pp.v_batch_stride = p.v_strides.batch;
  pp.v_head_stride = p.v_strides.head;
  pp.v_token_stride = p.v_strides.token;
  pp.batch = static_cast<int>(s.batch);
  pp.q_heads = static_cast<int>(s.q_heads);
  pp.kv_heads = static_cast<int>(s.kv_heads);
  pp.q_len = static_cast<int>(s.q_len);
  pp.kv_len = static_cast<int>(s.kv_len);
  pp.head_dim = static_cast<int>(s.head_dim);
  pp.granularity = static_cast<int>(p.attrs.qk_granularity);
  pp.qmax = 127;
  pp.smooth_k = p.attrs.smooth_k != 0 ? 1 : 0;
  pp.q_fold = static_cast<float>(static_cast<double>(sigma) * 1.4426950408889634);
  pp.v_range = v_range_of(p.attrs.pv_accum);
  pp.q_groups = static_cast<int>(plan.q_groups);
  pp.k_groups = static_cast<int>(plan.k_groups);
  pp.q_blocks = plan.q_blocks;
  pp.stat_chunks = plan.stat_chunks;
  pp.stat_chunk_len = plan.stat_chunk_len;
  pp.kv_tiles = plan.kv_tiles;
  pp.kv_len16 = plan.kv_len16;
  pp.vec_q = aligned16(p.q, p.q_strides, elem);
  pp.vec_k = aligned16(p.k, p.k_strides, elem);
  pp.vec_v = aligned16(p.v, p.v_strides, elem);
  pp.q8 = reinterpret_cast<int8_t*>(ws + plan.q8);
  pp.k8 = reinterpret_cast<int8_t*>(ws + plan.k8);
  pp.v8t = ws + plan.v8t;
  pp.q_scale = reinterpret_cast<float*>(ws + plan.q_scale);
  pp.k_scale = reinterpret_cast<float*>(ws + plan.k_scale);
  pp.v_scale = reinterpret_cast<float*>(ws + plan.v_scale);
  pp.part_ksum = reinterpret_cast<float*>(ws + plan.part_ksum);
  pp.part_vmax = reinterpret_cast<float*>(ws + plan.part_vmax);
  const cuda::KeyValidity keys = key_validity(p, plan, ws);
  // Short sequences without key masks (kv_len <= 2048; 1024 where clusters of 16 cannot be scheduled) quantize in one
  // launch (kernels/prepass.cuh, kClustered): each kv head's K (V) tiles form one cluster that reduces k-bar (amax V)
  // over distributed shared memory, so K and V are read once.
  if (!keys.any() && kv_cluster_allowed() && plan.kv_tiles <= max_kv_cluster(p.dtype, dp)) {
    pp.kv_cluster = plan.kv_tiles;
    pp.q_cluster_pad = static_cast<int>(ceil_div(plan.q_blocks, plan.kv_tiles) * plan.kv_tiles);
  }

  AttnTensorMaps maps{};
  const auto swz_qk = dp == 128 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_64B;
  const uint64_t bq = static_cast<uint64_t>(s.batch * s.q_heads);
  const uint64_t bk = static_cast<uint64_t>(s.batch * s.kv_heads);
  const uint32_t block_m = static_cast<uint32_t>(attn_block_m(dp));
  std::string err = encode_byte_tensor_map_3d(&maps.q, pp.q8, dp, s.q_len, bq, dp, dp * s.q_len, dp, block_m, swz_qk);
  if (err.empty()) {
    err = encode_byte_tensor_map_3d(&maps.k, pp.k8, dp, s.kv_len, bk, dp, dp * s.kv_len, dp, 128, swz_qk);
  }
  if (err.empty()) {
    err = encode_byte_tensor_map_3d(&maps.v, pp.v8t, plan.kv_len16, dp, bk, plan.kv_len16,
                                    static_cast<uint64_t>(plan.kv_len16) * dp, 128, dp, CU_TENSOR_MAP_SWIZZLE_128B);
  }
  if (!err.empty()) return "sm90: " + err;

  AttnKernelParams ap{};
  ap.q_scale = pp.q_scale;
  ap.k_scale = pp.k_scale;
  ap.v_scale = pp.v_scale;
  ap.out = p.out;
  ap.out_batch_stride = p.out_strides.batch;
  ap.out_head_stride = p.out_strides.head;
  ap.out_token_stride = p.out_strides.token;
  ap.batch = pp.batch;
  ap.q_heads = pp.q_heads;
  ap.kv_heads = pp.kv_heads;
  ap.heads_per_kv = static_cast<int>(s.q_heads / s.kv_heads);
  ap.q_len = pp.q_len;
  ap.kv_len = pp.kv_len;
  ap.head_dim = pp.head_dim;
  ap.q_groups = pp.q_groups;
  ap.k_groups = pp.k_groups;
  ap.granularity = pp.granularity;
  ap.causal_offset = p.attrs.causal_alignment == schema::CausalAlignment::kBottomRight
                         ? static_cast<int>(s.kv_len - s.q_len)
                         : 0;
  ap.out_pairs = (reinterpret_cast<uintptr_t>(p.out) % (2 * elem) == 0 && p.out_strides.batch % 2 == 0 &&
                  p.out_strides.head % 2 == 0 && p.out_strides.token % 2 == 0)
                     ? 1
                     : 0;
  ap.out_rows16 = aligned16(p.out, p.out_strides, elem) && (s.head_dim * elem) % 16 == 0 ? 1 : 0;
  // Masks (kernels/attention_masked.cuh): the masked kernels recompute kv_len and, bottom_right, the causal
  // offset per batch from `keys`; a general mask is read per block.
  AttnMaskParams mp{};
  mp.causal_bottom_right = p.attrs.causal_alignment == schema::CausalAlignment::kBottomRight ? 1 : 0;
  mp.keys = keys;
  if (plan.general_mask) {
    const MaskDesc& m = p.mask;
    const bool is_bool = m.kind == MaskDesc::Kind::kBool;
    mp.mask = m.data;
    mp.mask_type = static_cast<int>(is_bool                         ? MaskType::kBool
                                    : m.dtype == DType::kFloat32    ? MaskType::kFloat32
                                    : m.dtype == DType::kFloat16    ? MaskType::kFloat16
                                                                    : MaskType::kBFloat16);
    const int64_t mes = is_bool ? 1 : element_size(m.dtype);
    mp.mask_pairs = (reinterpret_cast<uintptr_t>(m.data) % (2 * mes) == 0 && m.stride_b % 2 == 0 &&
                     m.stride_h % 2 == 0 && m.stride_q % 2 == 0)
                        ? 1
                        : 0;
    mp.mask_stride_b = m.stride_b;
    mp.mask_stride_h = m.stride_h;
    mp.mask_stride_q = m.stride_q;
  }

  if (quantize) {
    if (plan.key_padding) {  // first: the K/V passes and the attention kernel read its bits and stats
      const cudaError_t e = cuda::launch_key_bits(p.mask.data, p.mask.stride_b, keys, pp.batch,
                                                  reinterpret_cast<uint64_t*>(ws + plan.key_bits),
                                                  reinterpret_cast<int32_t*>(ws + plan.key_stats), stream);
      if (e != cudaSuccess) return cuda_error("key-padding mask bits", e);
    }
    const cudaError_t e = keys.any() ? launch_prepass_keys(pp, keys, p.dtype, dp, stream)
                                     : launch_prepass(pp, p.dtype, dp, stream);
    if (e != cudaSuccess) return cuda_error("quantization", e);
  }
  if (!attend) return {};
  const bool causal = p.attrs.is_causal != 0;
  cudaError_t e;
  if (plan.general_mask) {
    e = dp == 64 ? launch_attention_mask_hd64(maps, ap, mp, p.dtype, causal, pp.batch, stream)
                 : launch_attention_mask_hd128(maps, ap, mp, p.dtype, causal, pp.batch, stream);
  } else if (mp.keys.any()) {
    e = dp == 64 ? launch_attention_keys_hd64(maps, ap, mp, p.dtype, causal, pp.batch, stream)
                 : launch_attention_keys_hd128(maps, ap, mp, p.dtype, causal, pp.batch, stream);
  } else {
    e = dp == 64 ? launch_attention_hd64(maps, ap, p.dtype, causal, pp.batch, stream)
                 : launch_attention_hd128(maps, ap, p.dtype, causal, pp.batch, stream);
  }
  if (e != cudaSuccess) return cuda_error("attention", e);
  return {};
}
