// Launch of a kernel that may start before the previous kernel of the stream has finished (programmatic
// dependent launch): the op's quantization pass 2 and attention kernel, each of which calls griddep_wait()
// (device/ptx_sm90.cuh) before it reads its predecessor's output. Their CTAs then fill the SMs as the
// predecessor's drain, and launch latency and prologues overlap its tail.
#pragma once
#include <cuda_runtime.h>

#include <utility>

namespace sage::sm90 {

// SAGE_SM90_PDL=0 builds plain launches (for A/B measurements).
#if defined(SAGE_SM90_PDL)
inline constexpr bool kDependentLaunch = SAGE_SM90_PDL != 0;
#else
inline constexpr bool kDependentLaunch = true;
#endif

template <typename... Params, typename... Args>
cudaError_t launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                             Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = kDependentLaunch ? 1 : 0;
  config.attrs = &attr;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace sage::sm90
