// What the driver's commands share: the loaded library, the creator under test, the captured log, and the
// plugin life cycle steps TensorRT performs (parse -> build -> serialize -> deserialize -> attach).
#pragma once
#include <NvInferRuntime.h>

#include <string>
#include <vector>

#include "fake_trt.h"
#include "plugin_fields_builder.h"
#include "plugin_library.h"

namespace sage_test {

struct Harness {
  PluginLibrary& library;
  CapturingLogger& logger;
  nvinfer1::IPluginCreatorV3One* creator;  // ("SageAttention", "1", "")

  // createPlugin(kBUILD) with the fields the ONNX parser builds from these node attributes.
  PluginPtr create_from_node(const std::vector<OnnxAttribute>& attrs, const char* name = "sage_node") const;
  // createPlugin(kRUNTIME) from a deep copy of p's getFieldsToSerialize(), as an engine plan would hold them.
  PluginPtr deserialize(nvinfer1::IPluginV3* p, const char* name = "sage_node") const;
};

nvinfer1::Dims make_dims(const std::vector<int64_t>& extents);
nvinfer1::DynamicPluginTensorDesc dynamic_desc(nvinfer1::DataType type, const nvinfer1::Dims& dims,
                                               nvinfer1::TensorFormat format = nvinfer1::TensorFormat::kLINEAR);
nvinfer1::PluginTensorDesc tensor_desc(nvinfer1::DataType type, const nvinfer1::Dims& dims);

// The CPU checks (no GPU touched); returns the number of failed checks.
int run_cpu_checks(const Harness& h);

// An optional input after query/key/value: attn_mask or key_lengths, read from DIR/<name>.bin (raw, `type`).
// The plugin identifies it by `type`; `name` only picks the file.
struct ExtraInput {
  std::string name;
  nvinfer1::DataType type = nvinfer1::DataType::kBOOL;
  std::vector<int64_t> dims;
};

struct GpuRunOptions {
  nvinfer1::DataType dtype = nvinfer1::DataType::kHALF;
  std::vector<int64_t> query, key, value;
  std::vector<ExtraInput> extras;  // inputs 3 and 4, in this order
  std::string dir;  // holds query.bin, key.bin, value.bin (raw, dtype); output.bin is written there
  std::vector<OnnxAttribute> attrs;
};

// Full life cycle on the GPU. Returns 0 on success, 77 (after printing "SKIP: ...") without a GPU, else 1.
int run_on_gpu(const Harness& h, const GpuRunOptions& options);

}  // namespace sage_test
