// Attention kernels for head dims 65..128 (padded to 128), no mask inputs: 3 output types x causal / not.
#include "attention_launch.cuh"

namespace sage::sm90 {

cudaError_t launch_attention_hd128(const AttnTensorMaps& maps, const AttnKernelParams& p, DType dtype, bool causal,
                                   int batch, cudaStream_t stream) {
  return launch_attention_for_dtype<128>(maps, p, dtype, causal, batch, stream);
}

}  // namespace sage::sm90
