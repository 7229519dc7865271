// The OrtCustomOp of SageAttention, one instance per (element type, execution provider); ORT merges them
// into one schema under the same name and picks the kernel by input type and EP.
#pragma once
#include "kernel.h"
#include "op_schema.gen.h"
#include "ort_api.h"

namespace sage::ort {

// Output type and shape = query's (pitfall: Ort::ShapeInferContext would default the type to float).
OrtStatusPtr ORT_API_CALL infer_output_shape(const OrtCustomOp*, OrtShapeInferContext* ctx);

template <ONNXTensorElementDataType T, Device D>
struct SageAttentionOp : Ort::CustomOpBase<SageAttentionOp<T, D>, SageAttentionKernel, true> {
  explicit SageAttentionOp(int api_version) {
    this->version = static_cast<uint32_t>(api_version);  // older runtimes refuse a newer op version
    this->InferOutputShapeFn = &infer_output_shape;
  }

  OrtStatusPtr CreateKernelV2(const OrtApi&, const OrtKernelInfo* info, void** kernel) const {
    return create_kernel(info, D, kernel);
  }

  const char* GetName() const { return schema::kOpName; }
  const char* GetExecutionProviderType() const {
    return D == Device::kCuda ? "CUDAExecutionProvider" : "CPUExecutionProvider";
  }
  size_t GetInputTypeCount() const { return schema::kNumInputs; }
  // attn_mask (bool or float) and key_lengths (int32/int64) accept several types: checked per run.
  ONNXTensorElementDataType GetInputType(size_t i) const {
    return static_cast<int>(i) < schema::kNumRequiredInputs ? T : ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t i) const {
    return static_cast<int>(i) < schema::kNumRequiredInputs ? INPUT_OUTPUT_REQUIRED : INPUT_OUTPUT_OPTIONAL;
  }
  size_t GetOutputTypeCount() const { return schema::kNumOutputs; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return T; }
};

}  // namespace sage::ort
