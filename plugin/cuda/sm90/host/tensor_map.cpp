#include "tensor_map.h"

#include <cuda_runtime_api.h>
#include <cudaTypedefs.h>

#include <mutex>

namespace sage::sm90 {
namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_fn(std::string& err) {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  static std::string init_err;
  static std::once_flag once;
  std::call_once(once, [] {
    void* ptr = nullptr;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &ptr, 12000, cudaEnableDefault, &q);
    if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || ptr == nullptr) {
      init_err = std::string("cuTensorMapEncodeTiled is not available from the CUDA driver: ") + cudaGetErrorString(e);
    } else {
      fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(ptr);
    }
  });
  err = init_err;
  return fn;
}

}  // namespace

std::string encode_byte_tensor_map_3d(CUtensorMap* map, const void* base, uint64_t dim0, uint64_t dim1, uint64_t dim2,
                                      uint64_t stride1, uint64_t stride2, uint32_t box0, uint32_t box1,
                                      CUtensorMapSwizzle swizzle) {
  std::string err;
  const auto fn = encode_fn(err);
  if (fn == nullptr) return err;
  const cuuint64_t dims[3] = {dim0, dim1, dim2};
  const cuuint64_t strides[2] = {stride1, stride2};
  const cuuint32_t box[3] = {box0, box1, 1};
  const cuuint32_t elem_strides[3] = {1, 1, 1};
  const CUresult r = fn(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 3, const_cast<void*>(base), dims, strides, box, elem_strides,
                        CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    return "cuTensorMapEncodeTiled failed (CUresult " + std::to_string(static_cast<int>(r)) + ") for dims " +
           std::to_string(dim0) + "x" + std::to_string(dim1) + "x" + std::to_string(dim2);
  }
  return {};
}

}  // namespace sage::sm90
