// Masked attention kernels for head dims 65..128 (padded to 128), general attn_mask (bool that is not key padding,
// or additive; attention_masked.cuh, MaskKind::kGeneral), with or without key_lengths: 3 output types x causal / not.
#include "attention_masked.cuh"

namespace sage::sm90 {

cudaError_t launch_attention_mask_hd128(const AttnTensorMaps& maps, const AttnKernelParams& p, const AttnMaskParams& m,
                                        DType dtype, bool causal, int batch, cudaStream_t stream) {
  return launch_masked_for_dtype<128, MaskKind::kGeneral>(maps, p, m, dtype, causal, batch, stream);
}

}  // namespace sage::sm90
