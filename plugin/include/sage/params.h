// The framework-free description of one SageAttention call: shapes, strides, pointers, attributes.
// Built by the shape resolver (shape.h) from ORT or TRT tensors; consumed by the CPU kernel and the CUDA runner.
#pragma once
#include <cstdint>

#include "op_schema.gen.h"

namespace sage {

enum class DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

inline const char* to_string(DType t) {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
  }
  return "?";
}

inline int64_t element_size(DType t) { return t == DType::kFloat32 ? 4 : 2; }

struct AttentionShape {
  int64_t batch = 0;
  int64_t q_heads = 0;
  int64_t kv_heads = 0;
  int64_t q_len = 0;
  int64_t kv_len = 0;
  int64_t head_dim = 0;
};

// Element strides of a (batch, head, token, channel) view; the channel stride is always 1.
struct Strides {
  int64_t batch = 0;
  int64_t head = 0;
  int64_t token = 0;
};

// The optional attn_mask input (docs/OP_CONTRACT.md, "Masks"): bool (true = attend) or additive, read as
// mask[b * stride_b + h * stride_h + i * stride_q + j]; broadcast dimensions have stride 0.
struct MaskDesc {
  enum class Kind : int { kNone = 0, kBool = 1, kAdditive = 2 };
  Kind kind = Kind::kNone;
  DType dtype = DType::kFloat32;  // element type of an additive mask
  const void* data = nullptr;
  int64_t stride_b = 0, stride_h = 0, stride_q = 0;
  // Depends on (batch, key) only: a bool key-padding mask also removes keys from K's mean and V's scales.
  bool key_padding = false;
};

// The optional key_lengths input: valid keys per batch, clamped to [0, kv_len].
struct KeyLengthsDesc {
  const void* data = nullptr;
  bool is_int64 = false;
};

struct AttentionParams {
  AttentionShape shape;
  DType dtype = DType::kFloat32;
  Strides q_strides, k_strides, v_strides, out_strides;
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  MaskDesc mask;
  KeyLengthsDesc key_lengths;
  schema::Attributes attrs;
  float softmax_scale = 0.f;  // attrs.scale resolved (0 -> 1/sqrt(head_dim))
};

}  // namespace sage
