#include "tensor_desc.h"

namespace sage::trt {

bool to_sage_dtype(nvinfer1::DataType type, DType& out) {
  switch (type) {
    case nvinfer1::DataType::kFLOAT: out = DType::kFloat32; return true;
    case nvinfer1::DataType::kHALF: out = DType::kFloat16; return true;
    case nvinfer1::DataType::kBF16: out = DType::kBFloat16; return true;
    default: return false;
  }
}

bool is_supported_dtype(nvinfer1::DataType type) {
  DType unused{};
  return to_sage_dtype(type, unused);
}

const char* trt_dtype_name(nvinfer1::DataType type) {
  DType t{};
  if (to_sage_dtype(type, t)) return to_string(t);
  switch (type) {
    case nvinfer1::DataType::kINT8: return "int8";
    case nvinfer1::DataType::kINT32: return "int32";
    case nvinfer1::DataType::kINT64: return "int64";
    case nvinfer1::DataType::kBOOL: return "bool";
    case nvinfer1::DataType::kUINT8: return "uint8";
    case nvinfer1::DataType::kFP8: return "float8";
    default: return "an unsupported type";
  }
}

InputDesc to_input_desc(nvinfer1::DataType type, nvinfer1::Dims const& dims) {
  InputDesc desc;
  to_sage_dtype(type, desc.dtype);
  const int32_t rank = dims.nbDims < 0 ? 0 : dims.nbDims;
  desc.dims.assign(dims.d, dims.d + rank);
  return desc;
}

namespace {

ElemType to_elem_type(nvinfer1::DataType type) {
  switch (type) {
    case nvinfer1::DataType::kFLOAT: return ElemType::kFloat32;
    case nvinfer1::DataType::kHALF: return ElemType::kFloat16;
    case nvinfer1::DataType::kBF16: return ElemType::kBFloat16;
    case nvinfer1::DataType::kBOOL: return ElemType::kBool;
    case nvinfer1::DataType::kINT32: return ElemType::kInt32;
    case nvinfer1::DataType::kINT64: return ElemType::kInt64;
    default: return ElemType::kOther;
  }
}

// Records input `index` in its role's slot; when another input holds it already, says so naming both
// inputs and what identified them (`kind` "types" or "ranks", `what(i)` the type or rank of input i).
template <class What>
std::string take_slot(int32_t index, OptionalRole role, const char* kind, What&& what, OptionalSlots& slots) {
  int32_t& slot = role == OptionalRole::kAttnMask ? slots.attn_mask : slots.key_lengths;
  if (slot >= 0) {
    return "inputs " + std::to_string(slot) + " and " + std::to_string(index) + " are both '" + role_name(role) +
           "' (" + kind + " " + what(slot) + " and " + what(index) +
           "); the plugin takes at most one attn_mask and one key_lengths after 'value'";
  }
  slot = index;
  return {};
}

std::vector<int64_t> to_vector(nvinfer1::Dims const& dims) {
  const int32_t rank = dims.nbDims < 0 ? 0 : dims.nbDims;
  return std::vector<int64_t>(dims.d, dims.d + rank);
}

}  // namespace

const char* role_name(OptionalRole role) {
  switch (role) {
    case OptionalRole::kAttnMask: return "attn_mask";
    case OptionalRole::kKeyLengths: return "key_lengths";
    case OptionalRole::kNone: break;
  }
  return "none";
}

OptionalRole optional_role(nvinfer1::DataType type, nvinfer1::DataType query_type) {
  if (type == nvinfer1::DataType::kBOOL || (type == query_type && is_supported_dtype(type))) {
    return OptionalRole::kAttnMask;
  }
  if (type == nvinfer1::DataType::kINT32 || type == nvinfer1::DataType::kINT64) return OptionalRole::kKeyLengths;
  return OptionalRole::kNone;
}

std::string identify_optional_inputs(nvinfer1::DataType const* types, int32_t nb_inputs, OptionalSlots& slots) {
  slots = OptionalSlots{};
  for (int32_t i = kNbRequiredInputs; i < nb_inputs; ++i) {
    const OptionalRole role = optional_role(types[i], types[0]);
    if (role == OptionalRole::kNone) {
      return "input " + std::to_string(i) + " has type " + trt_dtype_name(types[i]) +
             "; inputs after 'value' are identified by type: 'attn_mask' is bool or " + trt_dtype_name(types[0]) +
             " (the query's type; additive), 'key_lengths' is int32 or int64";
    }
    auto type_of = [&](int32_t j) { return std::string(trt_dtype_name(types[j])); };
    if (std::string err = take_slot(i, role, "types", type_of, slots); !err.empty()) return err;
  }
  return {};
}

std::string identify_optional_by_rank(nvinfer1::DimsExprs const* inputs, int32_t nb_inputs, OptionalSlots& slots) {
  slots = OptionalSlots{};
  for (int32_t i = kNbRequiredInputs; i < nb_inputs; ++i) {
    const int32_t rank = inputs[i].nbDims;
    const OptionalRole role = rank == 1                ? OptionalRole::kKeyLengths
                              : rank == 2 || rank == 4 ? OptionalRole::kAttnMask
                                                       : OptionalRole::kNone;
    if (role == OptionalRole::kNone) {
      return "input " + std::to_string(i) + " has rank " + std::to_string(rank) +
             "; after 'value' come 'attn_mask' ((batch, key length) or 4-D broadcastable to (B, Hq, Sq, Skv)) and "
             "'key_lengths' ((batch))";
    }
    auto rank_of = [&](int32_t j) { return std::to_string(inputs[j].nbDims); };
    if (std::string err = take_slot(i, role, "ranks", rank_of, slots); !err.empty()) return err;
  }
  return {};
}

std::string resolve_from_dims(const schema::Attributes& attrs, nvinfer1::DataType type, nvinfer1::Dims const& q,
                              nvinfer1::Dims const& k, nvinfer1::Dims const& v, AttentionParams& params) {
  if (!is_supported_dtype(type)) {
    return std::string("inputs have type ") + trt_dtype_name(type) + "; allowed types: float32, float16, bfloat16";
  }
  std::vector<int64_t> out_dims;
  return resolve_attention(attrs, to_input_desc(type, q), to_input_desc(type, k), to_input_desc(type, v), params,
                           out_dims);
}

std::string resolve_inputs(const schema::Attributes& attrs, nvinfer1::DataType const* types,
                           nvinfer1::Dims const* dims, int32_t nb_inputs, AttentionParams& params,
                           OptionalSlots& slots) {
  std::string err = resolve_from_dims(attrs, types[0], dims[0], dims[1], dims[2], params);
  if (err.empty()) err = identify_optional_inputs(types, nb_inputs, slots);
  if (!err.empty()) return err;
  OptionalInputDesc mask, key_lengths;
  if (slots.attn_mask >= 0) {
    mask = {true, to_elem_type(types[slots.attn_mask]), to_vector(dims[slots.attn_mask])};
  }
  if (slots.key_lengths >= 0) {
    key_lengths = {true, to_elem_type(types[slots.key_lengths]), to_vector(dims[slots.key_lengths])};
  }
  // The mask alone first, so that an error can be given the index of the input it is about.
  if (!(err = resolve_optional_inputs(mask, OptionalInputDesc{}, params)).empty()) {
    return "input " + std::to_string(slots.attn_mask) + " (attn_mask): " + err;
  }
  if (!(err = resolve_optional_inputs(mask, key_lengths, params)).empty()) {
    return "input " + std::to_string(slots.key_lengths) + " (key_lengths): " + err;
  }
  return {};
}

}  // namespace sage::trt
