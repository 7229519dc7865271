// The sm_90a (Hopper) SageAttention path: what the runner calls for kernel = "sm90" (or "auto" on sm_90).
// Contract (same as sage/runner.h): launches only on `stream`; never allocates, synchronizes or reads
// device data on the host, so it is safe inside CUDA graph capture. Scratch lives in `workspace`
// (>= sm90_workspace_bytes(p) bytes, 256-byte aligned).
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>

#include "params.h"

// Workspace bytes for these shapes and attributes (pointers are ignored).
size_t sm90_workspace_bytes(const sage::AttentionParams& p);

// "" when the current device and this build can run `p` on the sm90 path, else why not (naming the
// allowed values). Host-only queries of the device's attributes; no device work.
std::string sm90_can_implement(const sage::AttentionParams& p);

// One line naming the path and the mask handling of `p` (for describe()).
std::string sm90_describe(const sage::AttentionParams& p);

// Runs p on the sm90 path: two quantization launches (after the key-validity pass for a bool key-padding mask)
// and the attention kernel. "" on success.
std::string run_sm90_attention(const sage::AttentionParams& p, void* workspace, size_t bytes, cudaStream_t stream);
