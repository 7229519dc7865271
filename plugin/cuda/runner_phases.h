// Internal entry of the runner that can run the preprocessing and the attention kernel separately, so that
// benchmarks can time the attention kernel alone on a workspace prepared once.
#pragma once
#include <cstddef>
#include <string>

#include "params.h"
#include "plan.h"

namespace sage::cuda {

enum Phase : int { kPhasePreprocess = 1, kPhaseAttention = 2, kPhaseAll = 3 };

std::string run_phases(const AttentionParams& p, void* workspace, size_t workspace_bytes, void* stream, int phases);

// The plan for the current device ("" on success).
std::string plan_for_current_device(const AttentionParams& p, Plan* plan);

// Whether run_cuda_attention sends `p` to the Hopper path (kernel='sm90', or 'auto' on sm_90 when it can).
bool runs_on_sm90(const AttentionParams& p);

}  // namespace sage::cuda
