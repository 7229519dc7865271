// Translation between TensorRT's tensor descriptions and the framework-free sage types (params.h,
// shape.h). Everything the plugin knows about shapes goes through resolve_attention and
// resolve_optional_inputs, so the plugin accepts exactly the inputs the ORT op accepts and words its errors
// the same way.
#pragma once
#include <NvInferRuntime.h>

#include <string>
#include <vector>

#include "shape.h"

namespace sage::trt {

// The I/O element types of query, key, value and the output: float32, float16, bfloat16 (all share one).
bool to_sage_dtype(nvinfer1::DataType type, DType& out);
bool is_supported_dtype(nvinfer1::DataType type);
const char* trt_dtype_name(nvinfer1::DataType type);

InputDesc to_input_desc(nvinfer1::DataType type, nvinfer1::Dims const& dims);

// Inputs 0..2 are query, key, value; up to two more follow. TensorRT has no absent input in the middle of a
// plugin's list (and passes no names), so each extra input is identified by its element type: bool or the
// query's float type T is attn_mask (bool: true attends; T: additive), int32/int64 is key_lengths. At most
// one of each, in either order.
inline constexpr int32_t kNbRequiredInputs = 3;
inline constexpr int32_t kMaxInputs = 5;

enum class OptionalRole { kNone, kAttnMask, kKeyLengths };
const char* role_name(OptionalRole role);

// The role an extra input of `type` takes next to a query of `query_type`; kNone when the type fits neither.
OptionalRole optional_role(nvinfer1::DataType type, nvinfer1::DataType query_type);

// Input index of each optional input, -1 when absent.
struct OptionalSlots {
  int32_t attn_mask = -1;
  int32_t key_lengths = -1;
};

// Identifies inputs 3.. of `types` (all inputs, query first). Returns "" or a message naming the input index,
// its type and the allowed types.
std::string identify_optional_inputs(nvinfer1::DataType const* types, int32_t nb_inputs, OptionalSlots& slots);

// For getOutputShapes, which sees no types: the ranks decide (key_lengths is 1-D, attn_mask 2-D or 4-D).
std::string identify_optional_by_rank(nvinfer1::DimsExprs const* inputs, int32_t nb_inputs, OptionalSlots& slots);

// Resolves the three required inputs that may differ only in dims and share `type`. Returns "" or the
// resolver's message.
std::string resolve_from_dims(const schema::Attributes& attrs, nvinfer1::DataType type, nvinfer1::Dims const& q,
                              nvinfer1::Dims const& k, nvinfer1::Dims const& v, AttentionParams& params);

// Resolves every input (types[i], dims[i], i < nb_inputs): query/key/value, then the optional inputs by type
// through resolve_optional_inputs (params.mask and params.key_lengths.is_int64; no data pointers: bind them
// with bind_optional_inputs). Returns "" or a message naming the offending input.
std::string resolve_inputs(const schema::Attributes& attrs, nvinfer1::DataType const* types,
                           nvinfer1::Dims const* dims, int32_t nb_inputs, AttentionParams& params,
                           OptionalSlots& slots);

}  // namespace sage::trt
