// Attention kernels: head_dim 128, INT8 Q.K^T, FP16 P~.V, both per-block accumulators.
// One file per (P~.V type, head dim, Q.K^T type) keeps each translation unit to two kernels per target.
#include "../attention/launch.cuh"

SAGE_INSTANTIATE_ATTENTION(128, false, false, false, false)
SAGE_INSTANTIATE_ATTENTION(128, false, false, true, false)
