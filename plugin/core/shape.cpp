#include "shape.h"

#include <cmath>
#include <sstream>

namespace sage {

std::string dims_to_string(const std::vector<int64_t>& dims) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < dims.size(); ++i) s << (i ? ", " : "") << dims[i];
  s << "]";
  return s.str();
}

namespace {

struct HeadView {
  int64_t batch, heads, len, head_dim;
  Strides strides;
};

std::string describe(const char* name, const InputDesc& t) {
  return std::string("input '") + name + "' has shape " + dims_to_string(t.dims);
}

// Interprets one input as (batch, heads, tokens, head_dim) with contiguous-tensor strides.
std::string view_of(const char* name, const InputDesc& t, schema::Layout layout, int64_t num_heads, HeadView& out) {
  for (int64_t d : t.dims) {
    if (d < 0) return describe(name, t) + "; dimensions must be known and non-negative";
  }
  if (t.dims.size() == 3) {
    const int64_t b = t.dims[0], s = t.dims[1], hidden = t.dims[2];
    if (num_heads <= 0) {
      return describe(name, t) + "; 3-D inputs (batch, sequence, heads*head_dim) need attributes "
             "'q_num_heads' and 'kv_num_heads' > 0";
    }
    if (hidden % num_heads != 0) {
      return describe(name, t) + "; its last dimension must be a multiple of the head count " + std::to_string(num_heads);
    }
    out = {b, num_heads, s, hidden / num_heads, {s * hidden, hidden / num_heads, hidden}};
    return {};
  }
  if (t.dims.size() != 4) {
    return describe(name, t) + "; expected rank 4 (layout BNSH or BSNH) or rank 3 (batch, sequence, heads*head_dim)";
  }
  const int64_t b = t.dims[0], d = t.dims[3];
  if (layout == schema::Layout::kBNSH) {
    const int64_t h = t.dims[1], s = t.dims[2];
    out = {b, h, s, d, {h * s * d, s * d, d}};
  } else {
    const int64_t s = t.dims[1], h = t.dims[2];
    out = {b, h, s, d, {s * h * d, d, h * d}};
  }
  if (num_heads > 0 && num_heads != out.heads) {
    return describe(name, t) + " with " + std::to_string(out.heads) + " heads (layout " +
           schema::to_string(layout) + "), but the head-count attribute says " + std::to_string(num_heads);
  }
  return {};
}

}  // namespace

std::string resolve_attention(const schema::Attributes& attrs, const InputDesc& q, const InputDesc& k,
                              const InputDesc& v, AttentionParams& params, std::vector<int64_t>& out_dims) {
  if (k.dtype != q.dtype || v.dtype != q.dtype) {
    return std::string("inputs 'query', 'key', 'value' must share one type; got ") + to_string(q.dtype) + ", " +
           to_string(k.dtype) + ", " + to_string(v.dtype);
  }
  if (k.dims.size() != q.dims.size() || v.dims.size() != q.dims.size()) {
    return "inputs 'query', 'key', 'value' must have the same rank; got shapes " + dims_to_string(q.dims) + ", " +
           dims_to_string(k.dims) + ", " + dims_to_string(v.dims);
  }
  HeadView qv{}, kv{}, vv{};
  std::string err;
  if (!(err = view_of("query", q, attrs.layout, attrs.q_num_heads, qv)).empty()) return err;
  if (!(err = view_of("key", k, attrs.layout, attrs.kv_num_heads, kv)).empty()) return err;
  if (!(err = view_of("value", v, attrs.layout, attrs.kv_num_heads, vv)).empty()) return err;
  if (v.dims != k.dims) {
    return describe("value", v) + "; it must equal the shape of 'key' " + dims_to_string(k.dims) +
           " (value head_dim equals key head_dim)";
  }
  if (kv.batch != qv.batch) {
    return describe("key", k) + "; its batch must equal the batch of 'query' (" + std::to_string(qv.batch) + ")";
  }
  if (kv.head_dim != qv.head_dim) {
    return describe("key", k) + "; its head_dim (" + std::to_string(kv.head_dim) + ") must equal the head_dim of 'query' (" +
           std::to_string(qv.head_dim) + ")";
  }
  if (qv.head_dim < 1) return describe("query", q) + "; head_dim must be >= 1";
  if (kv.heads < 1 || qv.heads % kv.heads != 0) {
    return "query heads (" + std::to_string(qv.heads) + ") must be a positive multiple of key/value heads (" +
           std::to_string(kv.heads) + ") (GQA/MQA)";
  }
  if (kv.len < 1) return describe("key", k) + "; the key/value sequence length must be >= 1";
  params.shape = {qv.batch, qv.heads, kv.heads, qv.len, kv.len, qv.head_dim};
  params.dtype = q.dtype;
  params.q_strides = qv.strides;
  params.k_strides = kv.strides;
  params.v_strides = vv.strides;
  params.out_strides = qv.strides;
  params.attrs = attrs;
  params.softmax_scale = attrs.scale > 0.f ? attrs.scale : 1.f / std::sqrt(static_cast<float>(qv.head_dim));
  out_dims = q.dims;
  return {};
}

std::string resolve_optional_inputs(const OptionalInputDesc& mask, const OptionalInputDesc& key_lengths,
                                    AttentionParams& params) {
  const AttentionShape& s = params.shape;
  params.mask = MaskDesc{};
  params.key_lengths = KeyLengthsDesc{};
  if (mask.present) {
    const std::string what = "input 'attn_mask' has shape " + dims_to_string(mask.dims);
    MaskDesc& m = params.mask;
    switch (mask.type) {
      case ElemType::kBool: m.kind = MaskDesc::Kind::kBool; break;
      case ElemType::kFloat32: m.kind = MaskDesc::Kind::kAdditive; m.dtype = DType::kFloat32; break;
      case ElemType::kFloat16: m.kind = MaskDesc::Kind::kAdditive; m.dtype = DType::kFloat16; break;
      case ElemType::kBFloat16: m.kind = MaskDesc::Kind::kAdditive; m.dtype = DType::kBFloat16; break;
      default: return "input 'attn_mask' has an unsupported element type; allowed: bool, float32, float16, bfloat16";
    }
    const auto& d = mask.dims;
    if (d.size() == 2) {  // (B, Skv) key padding
      if (d[0] != s.batch || d[1] != s.kv_len) {
        return what + "; a 2-D mask must be (batch, key length) = " + dims_to_string({s.batch, s.kv_len});
      }
      m.stride_b = d[1];
    } else if (d.size() == 4) {
      const int64_t want[4] = {s.batch, s.q_heads, s.q_len, s.kv_len};
      const char* names[4] = {"batch", "query heads", "query length", "key length"};
      for (int i = 0; i < 4; ++i) {
        if (d[i] != want[i] && !(d[i] == 1 && i < 3)) {
          return what + "; dimension " + std::to_string(i) + " must be " + (i < 3 ? "1 or " : "") + "the " + names[i] +
                 " (" + std::to_string(want[i]) + "): 4-D masks broadcast to (B, Hq, Sq, Skv)";
        }
      }
      m.stride_q = d[2] == 1 ? 0 : d[3];
      m.stride_h = d[1] == 1 ? 0 : d[2] * d[3];
      m.stride_b = d[0] == 1 ? 0 : d[1] * d[2] * d[3];
    } else {
      return what + "; expected (batch, key length) or 4-D broadcastable to (B, Hq, Sq, Skv)";
    }
    m.key_padding = m.stride_h == 0 && m.stride_q == 0;
  }
  if (key_lengths.present) {
    if (key_lengths.type != ElemType::kInt32 && key_lengths.type != ElemType::kInt64) {
      return "input 'key_lengths' has an unsupported element type; allowed: int32, int64";
    }
    if (key_lengths.dims.size() != 1 || key_lengths.dims[0] != s.batch) {
      return "input 'key_lengths' has shape " + dims_to_string(key_lengths.dims) + "; it must be (batch) = [" +
             std::to_string(s.batch) + "]";
    }
    params.key_lengths.is_int64 = key_lengths.type == ElemType::kInt64;
  }
  return {};
}

void bind_optional_inputs(AttentionParams& params, const void* mask, const void* key_lengths) {
  params.mask.data = params.mask.kind != MaskDesc::Kind::kNone ? mask : nullptr;
  params.key_lengths.data = key_lengths;
}

const void* planning_placeholder() {
  static const int64_t placeholder = 0;
  return &placeholder;
}

}  // namespace sage
