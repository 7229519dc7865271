// The creator TensorRT's registry and ONNX parser look up by ("SageAttention", "1", ""). It advertises one
// field per contract attribute and builds plugins from field collections in both phases: the parser's (or a
// user's) at build time, and the plugin's own getFieldsToSerialize output when an engine is deserialized.
#pragma once
#include <NvInferRuntime.h>

#include <vector>

namespace sage::trt {

class SageAttentionCreator final : public nvinfer1::IPluginCreatorV3One {
 public:
  SageAttentionCreator();
  ~SageAttentionCreator() override = default;

  // Returns nullptr, after logging which attribute is wrong and what it allows, for invalid fields.
  nvinfer1::IPluginV3* createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fc,
                                    nvinfer1::TensorRTPhase phase) noexcept override;
  nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
  char const* getPluginName() const noexcept override;
  char const* getPluginVersion() const noexcept override;
  char const* getPluginNamespace() const noexcept override;

 private:
  std::vector<nvinfer1::PluginField> field_names_;
  nvinfer1::PluginFieldCollection field_collection_{};
};

}  // namespace sage::trt
