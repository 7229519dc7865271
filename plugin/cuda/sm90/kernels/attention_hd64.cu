// Attention kernels for head dims 1..64 (padded to 64), no mask inputs: 3 output types x causal / not.
#include "attention_launch.cuh"

namespace sage::sm90 {

cudaError_t launch_attention_hd64(const AttnTensorMaps& maps, const AttnKernelParams& p, DType dtype, bool causal,
                                  int batch, cudaStream_t stream) {
  return launch_attention_for_dtype<64>(maps, p, dtype, causal, batch, stream);
}

int attn_block_m(int head_dim_padded) {
  return head_dim_padded == 64 ? AttnTraits<64>::kBlockM : AttnTraits<128>::kBlockM;
}

}  // namespace sage::sm90
