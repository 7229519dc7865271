// Run-time flags -> the explicitly instantiated attention kernel (plugin/cuda/instantiations/).
#include "launch.h"

namespace sage::cuda {

namespace {

template <int kHeadDim, bool kInt4, bool kFp8, bool kAccF16>
cudaError_t by_masks(const AttentionConfig& c, const AttentionArgs& a, cudaStream_t s) {
  return c.masks ? launch_attention<AttentionTraits<kHeadDim, kInt4, kFp8, kAccF16, true>>(a, s)
                 : launch_attention<AttentionTraits<kHeadDim, kInt4, kFp8, kAccF16, false>>(a, s);
}

template <int kHeadDim, bool kInt4, bool kFp8>
cudaError_t by_accum(const AttentionConfig& c, const AttentionArgs& a, cudaStream_t s) {
  return c.accum_f16 ? by_masks<kHeadDim, kInt4, kFp8, true>(c, a, s) : by_masks<kHeadDim, kInt4, kFp8, false>(c, a, s);
}

template <int kHeadDim, bool kInt4>
cudaError_t by_pv(const AttentionConfig& c, const AttentionArgs& a, cudaStream_t s) {
  return c.fp8_pv ? by_accum<kHeadDim, kInt4, true>(c, a, s) : by_accum<kHeadDim, kInt4, false>(c, a, s);
}

template <int kHeadDim>
cudaError_t by_qk(const AttentionConfig& c, const AttentionArgs& a, cudaStream_t s) {
  return c.int4 ? by_pv<kHeadDim, true>(c, a, s) : by_pv<kHeadDim, false>(c, a, s);
}

}  // namespace

cudaError_t dispatch_attention(const AttentionConfig& c, const AttentionArgs& a, cudaStream_t s) {
  switch (c.head_dim) {
    case 64: return by_qk<64>(c, a, s);
    case 128: return by_qk<128>(c, a, s);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace sage::cuda
