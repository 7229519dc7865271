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

// The part resolve_optional_inputs leaves to the adapter: the data pointers. `mask` is used when an attn_mask
// was resolved (params.mask.kind != kNone), `key_lengths` as given (nullptr = no key_lengths input). The
// runner reads presence from these pointers (a non-null key_lengths pointer is what makes it a key_lengths
// call: kernel path, workspace), so every adapter binds through here.
void bind_optional_inputs(AttentionParams& params, const void* mask, const void* key_lengths);

// A non-null address to bind for a present optional input whose data does not exist yet (TensorRT's build
// phase), so that cuda_workspace_bytes / cuda_can_implement plan for the call enqueue will make. Only for
// those queries: it points at no tensor and must never reach run_cuda_attention.
const void* planning_placeholder();

std::string dims_to_string(const std::vector<int64_t>& dims);

}  // namespace sage
