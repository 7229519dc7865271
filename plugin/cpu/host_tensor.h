// Reads and writes rows of (batch, head, token, channel) views of fp32/fp16/bf16 host tensors.
#pragma once
#include <cstdint>

#include "numerics.h"
#include "params.h"

namespace sage::cpu {

inline int64_t row_offset(const Strides& s, int64_t b, int64_t h, int64_t t) {
  return b * s.batch + h * s.head + t * s.token;
}

inline void load_row(const void* base, DType dtype, int64_t offset, int64_t n, float* dst) {
  switch (dtype) {
    case DType::kFloat32: {
      const float* src = static_cast<const float*>(base) + offset;
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
      break;
    }
    case DType::kFloat16: {
      const uint16_t* src = static_cast<const uint16_t*>(base) + offset;
      for (int64_t i = 0; i < n; ++i) dst[i] = num::half_to_float(src[i]);
      break;
    }
    case DType::kBFloat16: {
      const uint16_t* src = static_cast<const uint16_t*>(base) + offset;
      for (int64_t i = 0; i < n; ++i) dst[i] = num::bf16_to_float(src[i]);
      break;
    }
  }
}

inline void store_row(void* base, DType dtype, int64_t offset, int64_t n, const float* src) {
  switch (dtype) {
    case DType::kFloat32: {
      float* dst = static_cast<float*>(base) + offset;
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
      break;
    }
    case DType::kFloat16: {
      uint16_t* dst = static_cast<uint16_t*>(base) + offset;
      for (int64_t i = 0; i < n; ++i) dst[i] = num::float_to_half(src[i]);
      break;
    }
    case DType::kBFloat16: {
      uint16_t* dst = static_cast<uint16_t*>(base) + offset;
      for (int64_t i = 0; i < n; ++i) dst[i] = num::float_to_bf16(src[i]);
      break;
    }
  }
}

}  // namespace sage::cpu
