// Mask kernels (a key-padding bitmask per KV block or a general attn_mask per score):
// head_dim 128, INT4 Q.K^T, FP16 P~.V, both per-block accumulators.
// Separate from the plain kernels' file so that the two compile in parallel.
#include "../attention/launch.cuh"

SAGE_INSTANTIATE_ATTENTION(128, true, false, false, true)
SAGE_INSTANTIATE_ATTENTION(128, true, false, true, true)
