#include "plan.h"

#include <cmath>
#include <cstdint>
#include <limits>

#include "preprocess/preprocess.h"
#include "quant_groups.h"

namespace sage::cuda {

namespace {

constexpr size_t kAlign = 256;
constexpr int kTokensPerSplit = 256;  // tokens per CTA of the channel-statistics pass
constexpr int64_t kMaxLen = std::numeric_limits<int32_t>::max() - 256;

size_t align_up(size_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

// Appends `bytes` to the layout; returns the offset.
size_t take(size_t* cursor, size_t bytes) {
  const size_t at = *cursor;
  *cursor = align_up(at + bytes);
  return at;
}

std::string resolve_path(schema::Kernel kernel, int arch, KernelPath* path) {
  const std::string here = "this device is sm_" + std::to_string(arch);
  if (arch < 80) return "SageAttention CUDA kernels need compute capability 8.0 or newer; " + here;
  switch (kernel) {
    case schema::Kernel::kAuto:
      // Hopper emulates FP8 mma.sync through FP16 tensor cores, so there the sm80 path (FP16 P~.V: more
      // accurate, and faster: 416 vs 332 TOPS end to end at D=128 N=8K on an H100) is the better portable one.
      *path = arch >= 89 && arch < 90 ? KernelPath::kSm89 : KernelPath::kSm80;
      return {};
    case schema::Kernel::kSm80: *path = KernelPath::kSm80; return {};
    case schema::Kernel::kSm89:
      if (arch < 89) {
        return "attribute 'kernel' is 'sm89', which needs FP8 tensor cores (sm_89 or newer); " + here +
               "; allowed values here: 'auto', 'sm80'";
      }
      *path = KernelPath::kSm89;
      return {};
    case schema::Kernel::kSm90:
      // run_cuda_attention sends kernel='sm90' to plugin/cuda/sm90; only the phase-by-phase C API lands here.
      return "attribute 'kernel' is 'sm90': the portable phases (preprocess/attention) are sm80/sm89 only; run "
             "the whole op (run_cuda_attention) for the Hopper path";
  }
  return "attribute 'kernel' has an unknown value";
}

bool divisible(int64_t x, int64_t d) { return x % d == 0; }

// MaskDesc as the shape resolver (plugin/core/shape.cpp) or the C API builds it; pointers are checked at run time.
std::string check_mask(const MaskDesc& m) {
  if (m.kind == MaskDesc::Kind::kNone) return {};
  if (m.kind != MaskDesc::Kind::kBool && m.kind != MaskDesc::Kind::kAdditive) return "attn_mask has an unknown kind";
  if (m.kind == MaskDesc::Kind::kAdditive && m.dtype != DType::kFloat32 && m.dtype != DType::kFloat16 &&
      m.dtype != DType::kBFloat16) {
    return "an additive attn_mask must be float32, float16 or bfloat16";
  }
  if (m.stride_b < 0 || m.stride_h < 0 || m.stride_q < 0) return "attn_mask strides must be >= 0";
  return {};
}

}  // namespace

const char* to_string(KernelPath p) { return p == KernelPath::kSm89 ? "sm89" : "sm80"; }

std::string make_plan(const AttentionParams& p, int arch, Plan* plan) {
  const AttentionShape& s = p.shape;
  const schema::Attributes& at = p.attrs;
  if (p.dtype != DType::kFloat32 && p.dtype != DType::kFloat16 && p.dtype != DType::kBFloat16) {
    return "unsupported element type";
  }
  if (s.batch < 1 || s.q_heads < 1 || s.kv_heads < 1 || s.q_len < 0 || s.kv_len < 1 || s.head_dim < 1) {
    return "shape must have batch, heads, kv_len and head_dim >= 1 and q_len >= 0";
  }
  if (s.head_dim > 128) {
    return "head_dim is " + std::to_string(s.head_dim) + "; the CUDA kernels support head_dim <= 128";
  }
  if (s.q_heads % s.kv_heads != 0) {
    return "q_heads (" + std::to_string(s.q_heads) + ") must be a multiple of kv_heads (" +
           std::to_string(s.kv_heads) + ")";
  }
  if (s.batch > 65535 || s.q_heads > 65535) return "batch and q_heads must be <= 65535 on the GPU";
  if (s.q_len > kMaxLen || s.kv_len > kMaxLen) return "sequence lengths must be below 2^31 - 256 on the GPU";
  // The kernels place the causal diagonal (j <= i + L_b - q_len) with 32-bit token arithmetic.
  if (at.is_causal && s.q_len + s.kv_len > kMaxLen) {
    return "causal: q_len + kv_len must be below 2^31 - 256 on the GPU";
  }
  if (std::string err = check_mask(p.mask); !err.empty()) return err;

  Plan& pl = *plan;
  pl = Plan{};
  if (std::string err = resolve_path(at.kernel, arch, &pl.path); !err.empty()) return err;
  const bool want_fp8 = at.pv_dtype == schema::PvDtype::kFp8E4m3;
  pl.fp8_pv = want_fp8 && pl.path == KernelPath::kSm89;
  pl.fp8_fallback = want_fp8 && pl.path == KernelPath::kSm80;
  pl.int4 = at.qk_quant == schema::QkQuant::kInt4;
  pl.accum_f16 = at.pv_accum == schema::PvAccum::kFp16;
  pl.head_dim_pad = s.head_dim <= 64 ? 64 : 128;
  pl.qk_row_bytes = pl.int4 ? pl.head_dim_pad / 2 : pl.head_dim_pad;
  pl.q_tiles = static_cast<int>(ceil_div(s.q_len, kBlockQ));
  pl.q_len_pad = pl.q_tiles * kBlockQ;
  pl.kv_tiles = static_cast<int>(ceil_div(s.kv_len, kBlockK));
  pl.kv_len_pad = pl.kv_tiles * kBlockK;
  pl.q_slots = pl.q_tiles * q_groups_per_tile(at.qk_granularity);
  pl.k_slots = pl.kv_tiles * k_groups_per_tile(at.qk_granularity);
  pl.tokens_per_split = kTokensPerSplit;
  pl.splits = static_cast<int>(ceil_div(s.kv_len, kTokensPerSplit));
  pl.v_range = pl.fp8_pv ? v_range_of(at.pv_accum) : 1.f;
  pl.key_lengths = p.key_lengths.data != nullptr;
  if (p.mask.kind == MaskDesc::Kind::kBool && p.mask.key_padding) {
    pl.mask = MaskMode::kKeyPadding;
  } else if (p.mask.kind != MaskDesc::Kind::kNone) {
    pl.mask = MaskMode::kGeneral;
  }
  pl.softmax_scale = p.softmax_scale > 0.f ? p.softmax_scale
                     : at.scale > 0.f     ? at.scale
                                          : 1.f / std::sqrt(static_cast<float>(s.head_dim));
  // FP16 P~.V can read an fp16 V in place when its rows are 16-byte chunks and the kernel's 32-bit token
  // offsets cannot overflow; the pointer's own alignment is checked when running. Not with a key-padding mask:
  // its holes may hold anything (NaN too), and only the converted copy replaces them by zeros (key_lengths are
  // fine: the kernel zero-fills the V tile past the valid length).
  pl.v_direct = !pl.fp8_pv && pl.mask != MaskMode::kKeyPadding && p.dtype == DType::kFloat16 &&
                divisible(s.head_dim, 8) &&
                divisible(p.v_strides.batch, 8) && divisible(p.v_strides.head, 8) &&
                divisible(p.v_strides.token, 8) && p.v_strides.token > 0 &&
                static_cast<int64_t>(pl.kv_len_pad) * p.v_strides.token <= std::numeric_limits<int32_t>::max();

  const size_t bq = static_cast<size_t>(s.batch * s.q_heads), bkv = static_cast<size_t>(s.batch * s.kv_heads);
  const size_t dp = static_cast<size_t>(pl.head_dim_pad);
  WorkspaceLayout& w = pl.ws;
  size_t cursor = 0;
  w.q_codes = take(&cursor, bq * pl.q_len_pad * pl.qk_row_bytes);
  w.q_scales = take(&cursor, bq * pl.q_slots * sizeof(float));
  w.k_codes = take(&cursor, bkv * pl.kv_len_pad * pl.qk_row_bytes);
  w.k_scales = take(&cursor, bkv * pl.k_slots * sizeof(float));
  if (at.smooth_k) w.k_mean = take(&cursor, bkv * dp * sizeof(float));
  if (at.smooth_k || pl.fp8_pv) w.partials = take(&cursor, bkv * pl.splits * dp * sizeof(float));
  if (at.smooth_q) {
    w.qbar_codes = take(&cursor, bq * pl.q_tiles * dp);
    w.qbar_scales = take(&cursor, bq * pl.q_tiles * sizeof(float));
  }
  if (pl.fp8_pv) {
    w.v = take(&cursor, bkv * dp * pl.kv_len_pad);
    w.v_scale = take(&cursor, bkv * dp * sizeof(float));
    w.v_inv = take(&cursor, bkv * dp * sizeof(float));
  } else if (!pl.v_direct) {
    w.v = take(&cursor, bkv * pl.kv_len_pad * dp * 2);
  }
  if (pl.mask == MaskMode::kKeyPadding) {
    w.key_bits = take(&cursor, static_cast<size_t>(s.batch) * pl.kv_tiles * sizeof(uint64_t));
    w.key_stats = take(&cursor, static_cast<size_t>(s.batch) * 2 * sizeof(int32_t));
  }
  w.total = cursor;
  return {};
}

std::string describe(const Plan& pl) {
  std::string d = std::string(to_string(pl.path)) + " kernel, " + (pl.int4 ? "int4" : "int8") + " Q.K^T, " +
                  (pl.fp8_pv ? "fp8_e4m3" : "fp16") + " P~.V with " + (pl.accum_f16 ? "fp16" : "fp32") +
                  " block accumulator, head_dim " + std::to_string(pl.head_dim_pad);
  if (pl.fp8_fallback) d += " (fp8_e4m3 requested: the sm80 path runs fp16 P~.V)";
  if (!pl.fp8_pv) d += pl.v_direct ? ", V read in place" : ", V converted to fp16";
  if (pl.key_lengths) d += ", key_lengths";
  if (pl.mask == MaskMode::kKeyPadding) d += ", key-padding mask (mask kernel: key bits per KV block)";
  if (pl.mask == MaskMode::kGeneral) d += ", general attn_mask (mask kernel: read per KV block)";
  return d;
}

}  // namespace sage::cuda
