#include "kernel.h"

#include <exception>
#include <vector>

#include "attributes.h"
#include "cpu_attention.h"
#include "shape.h"

namespace sage::ort {
namespace {

OrtStatusPtr make_error(const std::string& message, OrtErrorCode code = ORT_INVALID_ARGUMENT) {
  return api().CreateStatus(code, message.c_str());
}

bool to_dtype(ONNXTensorElementDataType t, DType& out) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: out = DType::kFloat32; return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: out = DType::kFloat16; return true;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: out = DType::kBFloat16; return true;
    default: return false;
  }
}

ElemType to_elem_type(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return ElemType::kFloat32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return ElemType::kFloat16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return ElemType::kBFloat16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return ElemType::kBool;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return ElemType::kInt32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return ElemType::kInt64;
    default: return ElemType::kOther;
  }
}

// GetTensorMutableData exists in every runtime we support (GetTensorData only since ORT 1.23).
void* tensor_data(const OrtValue* value) {
  void* data = nullptr;
  Ort::ThrowOnError(api().GetTensorMutableData(const_cast<OrtValue*>(value), &data));
  return data;
}

}  // namespace

std::string SageAttentionKernel::error_prefix() const {
  return std::string(schema::kOpName) + " node '" + node_name_ + "': ";
}

OrtStatusPtr SageAttentionKernel::ComputeV2(OrtKernelContext* context) {
  try {
    Ort::KernelContext ctx(context);
    if (ctx.GetInputCount() < static_cast<size_t>(schema::kNumRequiredInputs)) {
      return make_error(error_prefix() + "needs inputs 'query', 'key' and 'value'");
    }
    InputDesc desc[3];
    const void* data[3];
    for (size_t i = 0; i < 3; ++i) {
      Ort::ConstValue value = ctx.GetInput(i);
      if (!value) return make_error(error_prefix() + "input '" + schema::kInputNames[i] + "' is missing");
      auto info = value.GetTensorTypeAndShapeInfo();
      if (!to_dtype(info.GetElementType(), desc[i].dtype)) {
        return make_error(error_prefix() + "input '" + schema::kInputNames[i] +
                          "' has an unsupported element type; allowed: float32, float16, bfloat16");
      }
      desc[i].dims = info.GetShape();
      data[i] = tensor_data(value);
    }
    AttentionParams params;
    std::vector<int64_t> out_dims;
    std::string err = resolve_attention(attrs_, desc[0], desc[1], desc[2], params, out_dims);
    if (!err.empty()) return make_error(error_prefix() + err);
    OptionalInputDesc optional[2];
    const void* optional_data[2] = {nullptr, nullptr};
    for (size_t i = 0; i < 2; ++i) {
      const size_t index = schema::kNumRequiredInputs + i;
      if (index >= ctx.GetInputCount()) break;
      Ort::ConstValue value = ctx.GetInput(index);
      if (!value) continue;  // an omitted optional input
      auto info = value.GetTensorTypeAndShapeInfo();
      optional[i] = {true, to_elem_type(info.GetElementType()), info.GetShape()};
      optional_data[i] = tensor_data(value);
    }
    err = resolve_optional_inputs(optional[0], optional[1], params);
    if (!err.empty()) return make_error(error_prefix() + err);
    bind_optional_inputs(params, optional_data[0], optional_data[1]);
    auto output = ctx.GetOutput(0, out_dims.data(), out_dims.size());
    params.q = data[0];
    params.k = data[1];
    params.v = data[2];
    params.out = tensor_data(output);
    std::string run_err;
    if (device_ == Device::kCpu) {
      run_err = run_cpu_attention(params);
    } else {
#ifdef SAGE_WITH_CUDA
      run_err = run_on_cuda(params, context);
#else
      run_err = "this library was built without CUDA";
#endif
    }
    if (!run_err.empty()) return make_error(error_prefix() + run_err, ORT_FAIL);
    return nullptr;
  } catch (const Ort::Exception& e) {
    return make_error(error_prefix() + e.what(), e.GetOrtErrorCode());
  } catch (const std::exception& e) {
    return make_error(error_prefix() + e.what(), ORT_FAIL);
  }
}

OrtStatusPtr create_kernel(const OrtKernelInfo* info, Device device, void** kernel) {
  try {
    const std::string name = node_name(info);
    schema::Attributes attrs;
    const std::string err = read_attributes(info, attrs);
    if (!err.empty()) return make_error(std::string(schema::kOpName) + " node '" + name + "': " + err);
    *kernel = new SageAttentionKernel(name, attrs, device);
    return nullptr;
  } catch (const std::exception& e) {
    return make_error(std::string(schema::kOpName) + ": kernel creation failed: " + e.what(), ORT_FAIL);
  }
}

}  // namespace sage::ort
