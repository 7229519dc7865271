// The one GPU entry point shared by the ORT CUDA op, the TensorRT plugin and the Python C API.
// Contract: launches only on `stream`; never allocates, synchronizes or reads device data on the host,
// so it is safe inside CUDA graph capture. All scratch lives in the caller's workspace.
#pragma once
#include <cstddef>
#include <string>

#include "params.h"

namespace sage {

// Bytes of workspace `run_cuda_attention` needs for these shapes and attributes (pointers are ignored).
size_t cuda_workspace_bytes(const AttentionParams& p);

// Checks that the current device can run `p` (head_dim, kernel path, arch); "" when it can, else why not.
std::string cuda_can_implement(const AttentionParams& p);

// Runs SageAttention on the GPU. `stream` is a cudaStream_t; `workspace` is device memory of at least
// cuda_workspace_bytes(p) bytes, aligned to 256. Returns "" on success, else an error message.
std::string run_cuda_attention(const AttentionParams& p, void* workspace, size_t workspace_bytes, void* stream);

}  // namespace sage
