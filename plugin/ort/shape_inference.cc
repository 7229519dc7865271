#include <vector>

#include "op.h"

namespace sage::ort {

OrtStatusPtr ORT_API_CALL infer_output_shape(const OrtCustomOp*, OrtShapeInferContext* ctx) {
  // ORT drops statuses returned from here, so failures just leave the output shape unknown; the kernel
  // validates inputs and reports errors on every run.
  const OrtApi& a = api();
  // `query` stays owned by the context: releasing it double-frees inside onnxruntime 1.31 (seen in a
  // test), unlike what the C++ wrapper suggests. Only the info we create is ours to release.
  OrtTensorTypeAndShapeInfo* query = nullptr;
  OrtTensorTypeAndShapeInfo* out = nullptr;
  auto release = [&] {
    if (out) a.ReleaseTensorTypeAndShapeInfo(out);
  };
  auto failed = [&](OrtStatus* st) {
    if (!st) return false;
    a.ReleaseStatus(st);
    release();
    return true;
  };
  if (failed(a.ShapeInferContext_GetInputTypeShape(ctx, 0, &query))) return nullptr;
  ONNXTensorElementDataType type{};
  size_t rank = 0;
  if (failed(a.GetTensorElementType(query, &type)) || failed(a.GetDimensionsCount(query, &rank))) return nullptr;
  if (rank == 0) {
    release();
    return nullptr;
  }
  std::vector<int64_t> dims(rank);
  std::vector<const char*> symbols(rank, nullptr);
  if (failed(a.GetDimensions(query, dims.data(), rank)) ||
      failed(a.GetSymbolicDimensions(query, symbols.data(), rank))) {
    return nullptr;
  }
  // An unknown, unnamed dimension would be copied out as a literal -1, which ORT then treats as a size
  // (and constant-folds Shape() of our output to it): leave the output shape unset instead.
  for (size_t i = 0; i < rank; ++i) {
    if (dims[i] < 0 && (symbols[i] == nullptr || symbols[i][0] == '\0')) {
      release();
      return nullptr;
    }
  }
  if (failed(a.CreateTensorTypeAndShapeInfo(&out)) || failed(a.SetTensorElementType(out, type)) ||
      failed(a.SetDimensions(out, dims.data(), rank)) ||
      failed(a.SetSymbolicDimensions(out, symbols.data(), rank)) ||
      failed(a.ShapeInferContext_SetOutputTypeShape(ctx, 0, out))) {
    return nullptr;
  }
  release();
  return nullptr;
}

}  // namespace sage::ort
