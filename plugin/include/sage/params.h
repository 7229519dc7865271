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

struct AttentionParams {
  AttentionShape shape;
  DType dtype = DType::kFloat32;
  Strides q_strides, k_strides, v_strides, out_strides;
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  schema::Attributes attrs;
  float softmax_scale = 0.f;  // attrs.scale resolved (0 -> 1/sqrt(head_dim))
};

}  // namespace sage
