// Turns the op's attributes and its inputs' dims into AttentionParams (shapes + element strides of
// contiguous tensors in the declared layout) and the output dims. Shared by the ORT op and the TRT plugin,
// so both accept exactly the same inputs and word their errors the same way.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "params.h"

namespace sage {

struct InputDesc {
  DType dtype = DType::kFloat32;
  std::vector<int64_t> dims;
};

// Validates q/k/v against the contract (docs/OP_CONTRACT.md, "Rules") and fills `params` (everything but
// the data pointers) and `out_dims`. Returns "" on success, else a message naming the argument and the
// allowed values.
std::string resolve_attention(const schema::Attributes& attrs, const InputDesc& q, const InputDesc& k,
                              const InputDesc& v, AttentionParams& params, std::vector<int64_t>& out_dims);

// Element type of an optional input (attn_mask: bool or a float type; key_lengths: int32 or int64).
enum class ElemType { kFloat32, kFloat16, kBFloat16, kBool, kInt32, kInt64, kOther };

struct OptionalInputDesc {
  bool present = false;
  ElemType type = ElemType::kOther;
  std::vector<int64_t> dims;
};

// Validates the optional attn_mask and key_lengths against the already resolved shapes in `params` and
// fills params.mask (kind, dtype, broadcast strides; not the data pointer) and params.key_lengths.is_int64.
std::string resolve_optional_inputs(const OptionalInputDesc& mask, const OptionalInputDesc& key_lengths,
                                    AttentionParams& params);

std::string dims_to_string(const std::vector<int64_t>& dims);

}  // namespace sage
