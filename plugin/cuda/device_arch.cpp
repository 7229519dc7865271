#include "device_arch.h"

#include <cuda_runtime_api.h>

#include <array>
#include <atomic>

namespace sage::cuda {

int current_device_arch(std::string* error) {
  static std::array<std::atomic<int>, 64> cache{};  // 0 = not queried yet
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) {
    if (error) *error = std::string("cudaGetDevice failed: ") + cudaGetErrorString(err);
    return 0;
  }
  if (device >= 0 && device < static_cast<int>(cache.size())) {
    const int cached = cache[device].load(std::memory_order_relaxed);
    if (cached > 0) return cached;
  }
  int major = 0, minor = 0;
  err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (err != cudaSuccess) {
    if (error) *error = std::string("cudaDeviceGetAttribute failed: ") + cudaGetErrorString(err);
    return 0;
  }
  const int arch = major * 10 + minor;
  if (device >= 0 && device < static_cast<int>(cache.size())) cache[device].store(arch, std::memory_order_relaxed);
  return arch;
}

}  // namespace sage::cuda
