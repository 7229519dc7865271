// Launch of the quantization (prepass.cuh: two passes, or one clustered launch for short sequences) for every input
// type and padded head dim; included by prepass.cu (kKeys = false) and prepass_keys.cu (kKeys = true) only.
#pragma once
#include <cuda_runtime_api.h>

#include "../host/dependent_launch.h"
#include "params.h"
#include "prepass.cuh"

namespace sage::sm90 {

// Clusters of up to 16 CTAs (kv_len <= 2048) exceed the portable 8; sm_90 schedules them when the kernel allows it.
template <typename T, int kHD>
cudaError_t allow_large_clusters() {
  static const cudaError_t e = cudaFuncSetAttribute(&sm90_prepass_clustered_kernel<T, kHD>,
                                                    cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
  return e;
}

// A launch of `grid` CTAs of the clustered kernel in clusters of `cluster`; `attr` holds the cluster attribute the
// configuration points to (it must outlive the configuration's use).
inline cudaLaunchConfig_t clustered_config(unsigned grid, unsigned cluster, cudaStream_t stream,
                                           cudaLaunchAttribute& attr) {
  attr = cudaLaunchAttribute{};
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim.x = cluster;
  attr.val.clusterDim.y = 1;
  attr.val.clusterDim.z = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(grid);
  config.blockDim = dim3(kPrepassThreads);
  config.stream = stream;
  config.attrs = &attr;
  config.numAttrs = 1;
  return config;
}

// The single-launch quantization (p.kv_cluster > 0): Q CTAs, then a cluster of kv_cluster CTAs per kv head and tensor.
template <typename T, int kHD>
cudaError_t launch_prepass_clustered(const PrepassParams& p, cudaStream_t stream) {
  const cudaError_t allow = allow_large_clusters<T, kHD>();
  if (allow != cudaSuccess) return allow;
  cudaLaunchAttribute attr;
  const cudaLaunchConfig_t config =
      clustered_config(static_cast<unsigned>(p.q_cluster_pad + 2 * p.batch * p.kv_heads * p.kv_cluster),
                       static_cast<unsigned>(p.kv_cluster), stream, attr);
  return cudaLaunchKernelEx(&config, &sm90_prepass_clustered_kernel<T, kHD>, p);
}

// Whether clusters of `size` CTAs of the single-launch quantization can be scheduled on this device (sm_90 allows up
// to 16 with the non-portable attribute; a device or MIG slice with small GPCs may not).
template <typename T, int kHD>
bool clustered_prepass_fits(int size) {
  if (allow_large_clusters<T, kHD>() != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  cudaLaunchAttribute attr;
  const cudaLaunchConfig_t config =
      clustered_config(static_cast<unsigned>(size), static_cast<unsigned>(size), nullptr, attr);
  int clusters = 0;
  if (cudaOccupancyMaxActiveClusters(&clusters, &sm90_prepass_clustered_kernel<T, kHD>, &config) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return clusters > 0;
}

// Both passes, or (no key masks, p.kv_cluster > 0) the single clustered launch. kKeys: the passes that see only each
// batch's valid keys (`keys`; ignored otherwise).
template <typename T, int kHD, bool kKeys>
cudaError_t launch_prepass_typed(const PrepassParams& p, const cuda::KeyValidity& keys, cudaStream_t stream) {
  if constexpr (!kKeys) {
    if (p.kv_cluster > 0) return launch_prepass_clustered<T, kHD>(p, stream);
  }
  const int pass1 = p.q_blocks + p.batch * p.kv_heads * p.stat_chunks;
  if constexpr (kKeys) {
    sm90_prepass_q_stats_keys_kernel<T, kHD><<<pass1, kPrepassThreads, 0, stream>>>(p, keys);
  } else {
    sm90_prepass_q_stats_kernel<T, kHD><<<pass1, kPrepassThreads, 0, stream>>>(p);
  }
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  // Pass 2 starts while pass 1 drains: its CTAs load their K / V rows, then wait for pass 1's statistics.
  const dim3 pass2(2 * p.batch * p.kv_heads * p.kv_tiles);  // a K and a V CTA per tile
  if constexpr (kKeys) {
    return launch_dependent(&sm90_prepass_kv_keys_kernel<T, kHD>, pass2, dim3(kPrepassThreads), 0, stream, p, keys);
  } else {
    return launch_dependent(&sm90_prepass_kv_kernel<T, kHD>, pass2, dim3(kPrepassThreads), 0, stream, p);
  }
}

template <bool kKeys, int kHD>
cudaError_t launch_prepass_hd(const PrepassParams& p, const cuda::KeyValidity& keys, DType dtype,
                              cudaStream_t stream) {
  switch (dtype) {
    case DType::kFloat16: return launch_prepass_typed<__half, kHD, kKeys>(p, keys, stream);
    case DType::kBFloat16: return launch_prepass_typed<__nv_bfloat16, kHD, kKeys>(p, keys, stream);
    case DType::kFloat32: return launch_prepass_typed<float, kHD, kKeys>(p, keys, stream);
  }
  return cudaErrorInvalidValue;
}

template <bool kKeys>
cudaError_t launch_prepass_passes(const PrepassParams& p, const cuda::KeyValidity& keys, DType dtype,
                                  int head_dim_padded, cudaStream_t stream) {
  return head_dim_padded == 64 ? launch_prepass_hd<kKeys, 64>(p, keys, dtype, stream)
                               : launch_prepass_hd<kKeys, 128>(p, keys, dtype, stream);
}

}  // namespace sage::sm90
