// Mask kernels (a key-padding bitmask per KV block or a general attn_mask per score):
// head_dim 64, INT8 Q.K^T, FP8 E4M3 (sm_89+) P~.V, both per-block accumulators.
// Separate from the plain kernels' file so that the two compile in parallel.
#include "../attention/launch.cuh"

SAGE_INSTANTIATE_ATTENTION(64, false, true, false, true)
SAGE_INSTANTIATE_ATTENTION(64, false, true, true, true)
