// Masked attention kernels for head dims 65..128 (padded to 128), key_lengths and bool key-padding masks
// (attention_masked.cuh, MaskKind::kKeys; kLengths for key_lengths alone): 3 output types x causal / not.
#include "attention_masked.cuh"

namespace sage::sm90 {

cudaError_t launch_attention_keys_hd128(const AttnTensorMaps& maps, const AttnKernelParams& p, const AttnMaskParams& m,
                                        DType dtype, bool causal, int batch, cudaStream_t stream) {
  // key_lengths alone (no key bits): the unmasked kernel's loop on the batch's key range.
  if (m.keys.bits == nullptr) {
    return launch_masked_for_dtype<128, MaskKind::kLengths>(maps, p, m, dtype, causal, batch, stream);
  }
  return launch_masked_for_dtype<128, MaskKind::kKeys>(maps, p, m, dtype, causal, batch, stream);
}

}  // namespace sage::sm90
