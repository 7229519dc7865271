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

std::string resolve_from_dims(const schema::Attributes& attrs, nvinfer1::DataType type, nvinfer1::Dims const& q,
                              nvinfer1::Dims const& k, nvinfer1::Dims const& v, AttentionParams& params) {
  if (!is_supported_dtype(type)) {
    return std::string("inputs have type ") + trt_dtype_name(type) + "; allowed types: float32, float16, bfloat16";
  }
  std::vector<int64_t> out_dims;
  return resolve_attention(attrs, to_input_desc(type, q), to_input_desc(type, k), to_input_desc(type, v), params,
                           out_dims);
}

}  // namespace sage::trt
