// Kernel launchers of the sm_90a path; each returns the launch's cudaError_t (cudaGetLastError()).
#pragma once
#include <cuda.h>
#include <cuda_runtime_api.h>

#include "../kernels/kernel_params.h"
#include "params.h"

namespace sage::sm90 {

struct AttnTensorMaps {
  CUtensorMap q;
  CUtensorMap k;
  CUtensorMap v;
};

// Both quantization passes; `dtype` is the input type, `head_dim_padded` 64 or 128. With key_lengths or a
// key-padding mask (keys.any()), launch_prepass_keys: the passes that see only each batch's valid keys
// (prepass.cuh, kKeys).
cudaError_t launch_prepass(const PrepassParams& p, DType dtype, int head_dim_padded, cudaStream_t stream);
// Largest cluster the single-launch quantization (PrepassParams::kv_cluster) may use on the current device: 16 where
// sm_90's non-portable cluster size can be scheduled, else the portable 8.
int max_kv_cluster(DType dtype, int head_dim_padded);
cudaError_t launch_prepass_keys(const PrepassParams& p, const cuda::KeyValidity& keys, DType dtype,
                                int head_dim_padded, cudaStream_t stream);

// The attention kernel over a (ceil(Sq / block_m), Hq, B) grid; `dtype` is the output type. The Q tensor
// map's box must be attn_block_m(head_dim_padded) rows.
cudaError_t launch_attention_hd64(const AttnTensorMaps& maps, const AttnKernelParams& p, DType dtype, bool causal,
                                  int batch, cudaStream_t stream);
cudaError_t launch_attention_hd128(const AttnTensorMaps& maps, const AttnKernelParams& p, DType dtype, bool causal,
                                   int batch, cudaStream_t stream);
int attn_block_m(int head_dim_padded);

// The masked kernels (kernels/attention_masked.cuh), same grid and maps: kKeys for key_lengths and bool
// key-padding masks (m.keys), kGeneral for a general attn_mask (m.mask, with or without key_lengths).
cudaError_t launch_attention_keys_hd64(const AttnTensorMaps& maps, const AttnKernelParams& p, const AttnMaskParams& m,
                                       DType dtype, bool causal, int batch, cudaStream_t stream);
cudaError_t launch_attention_keys_hd128(const AttnTensorMaps& maps, const AttnKernelParams& p, const AttnMaskParams& m,
                                        DType dtype, bool causal, int batch, cudaStream_t stream);
cudaError_t launch_attention_mask_hd64(const AttnTensorMaps& maps, const AttnKernelParams& p, const AttnMaskParams& m,
                                       DType dtype, bool causal, int batch, cudaStream_t stream);
cudaError_t launch_attention_mask_hd128(const AttnTensorMaps& maps, const AttnKernelParams& p, const AttnMaskParams& m,
                                        DType dtype, bool causal, int batch, cudaStream_t stream);

// A trivial kernel of this translation unit set: its binaryVersion tells whether sm_90a code was built.
const void* sm90_probe_kernel();

}  // namespace sage::sm90
