// Translation between TensorRT's tensor descriptions and the framework-free sage types (params.h,
// shape.h). Everything the plugin knows about shapes goes through resolve_attention, so the plugin accepts
// exactly the inputs the ORT op accepts and words its errors the same way.
#pragma once
#include <NvInferRuntime.h>

#include <string>
#include <vector>

#include "shape.h"

namespace sage::trt {

// The I/O element types of the plugin: float32, float16, bfloat16 (all inputs and the output share one).
bool to_sage_dtype(nvinfer1::DataType type, DType& out);
bool is_supported_dtype(nvinfer1::DataType type);
const char* trt_dtype_name(nvinfer1::DataType type);

InputDesc to_input_desc(nvinfer1::DataType type, nvinfer1::Dims const& dims);

// Resolves the attention problem for three input descriptions (query, key, value) that may differ only
// in dims and type. Returns "" or the resolver's message.
std::string resolve_from_dims(const schema::Attributes& attrs, nvinfer1::DataType type, nvinfer1::Dims const& q,
                              nvinfer1::Dims const& k, nvinfer1::Dims const& v, AttentionParams& params);

}  // namespace sage::trt
