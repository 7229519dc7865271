// The ORT kernel of SageAttention: turns ORT tensors into AttentionParams and calls the CPU kernel or the
// CUDA runner. Attributes are validated once at kernel creation, inputs on every run.
#pragma once
#include <string>

#include "op_schema.gen.h"
#include "ort_api.h"
#include "params.h"

namespace sage::ort {

enum class Device { kCpu, kCuda };

class SageAttentionKernel {
 public:
  SageAttentionKernel(std::string node_name, const schema::Attributes& attrs, Device device)
      : node_name_(std::move(node_name)), attrs_(attrs), device_(device) {}

  OrtStatusPtr ComputeV2(OrtKernelContext* context);

  // "SageAttention node 'name': " — every error the op reports starts with this.
  std::string error_prefix() const;

 private:
  std::string node_name_;
  schema::Attributes attrs_;
  Device device_;
};

// Creates the kernel after validating the node's attributes against the contract.
OrtStatusPtr create_kernel(const OrtKernelInfo* info, Device device, void** kernel);

#ifdef SAGE_WITH_CUDA
// Runs `p` (device pointers) on ORT's compute stream with ORT scratch memory. Defined in cuda_compute.cc.
std::string run_on_cuda(const AttentionParams& p, OrtKernelContext* context);
#endif

}  // namespace sage::ort
