// Device-side E4M3 conversions exposed for the bit-exactness test against the host implementation.
#include <cuda_runtime.h>

#include <cstdint>

#include "common/convert.cuh"
#include "e4m3_probe.h"

namespace sage::cuda {

namespace {

__global__ void e4m3_probe_kernel(const float* in, uint8_t* out, int64_t n, int method) {
  const int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * 4;
  if (i >= n) return;
  float x[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) x[j] = i + j < n ? in[i + j] : 0.f;
  uint8_t code[4];
  if (method == 0) {
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 890)
    const uint32_t packed = pack_e4m3x4(x[0], x[1], x[2], x[3]);
#pragma unroll
    for (int j = 0; j < 4; ++j) code[j] = static_cast<uint8_t>(packed >> (8 * j));
#else
    __trap();
#endif
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) code[j] = float_to_e4m3(x[j]);
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    if (i + j < n) out[i + j] = code[j];
  }
}

}  // namespace

cudaError_t launch_e4m3_probe(const float* in, uint8_t* out, int64_t n, int method, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const int64_t threads = 256, blocks = (n + 4 * threads - 1) / (4 * threads);
  e4m3_probe_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(in, out, n, method);
  return cudaGetLastError();
}

}  // namespace sage::cuda
