// CUDA EP path: ORT's compute stream and ORT scratch memory (stream-ordered arena; no cudaMalloc per run).
#include <string>

#include "kernel.h"
#include "runner.h"

namespace sage::ort {

std::string run_on_cuda(const AttentionParams& p, OrtKernelContext* context) {
  Ort::KernelContext ctx(context);
  void* stream = ctx.GetGPUComputeStream();
  const size_t bytes = cuda_workspace_bytes(p);
  void* workspace = nullptr;
  OrtAllocator* allocator = nullptr;
  const OrtMemoryInfo* mem_info = nullptr;
  if (bytes > 0) {
    Ort::ThrowOnError(api().GetTensorMemoryInfo(ctx.GetInput(0), &mem_info));
    Ort::ThrowOnError(api().KernelContext_GetScratchBuffer(context, mem_info, bytes, &workspace));
    Ort::ThrowOnError(api().KernelContext_GetAllocator(context, mem_info, &allocator));
  }
  const std::string err = run_cuda_attention(p, workspace, bytes, stream);
  // The arena is stream-aware: freeing after enqueueing keeps the block reserved for this stream's work.
  if (workspace != nullptr) allocator->Free(allocator, workspace);
  if (allocator != nullptr) api().ReleaseAllocator(allocator);
  return err;
}

}  // namespace sage::ort
