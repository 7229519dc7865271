// The SageAttention TensorRT plugin: one IPluginV3 object with the core, build and runtime capabilities.
// It only translates: attributes come from plugin_fields (the schema table), shapes go through the shared
// resolver (plugin/core/shape.h), and the work is done by the CUDA runner (runner.h). Inputs: query, key,
// value, then up to two optional inputs told apart by type (tensor_desc.h): attn_mask, key_lengths.
#pragma once
#include <NvInferRuntime.h>

#include <string>

#include "op_schema.gen.h"
#include "plugin_fields.h"

namespace sage::trt {

// Identity seen by the TensorRT registry and the ONNX parser: the node's op_type, plugin_version "1" (the
// parser's default) and namespace "" (found for any node domain).
inline constexpr const char* kPluginName = schema::kOpName;
inline constexpr const char* kPluginVersion = "1";
inline constexpr const char* kPluginNamespace = "";
static_assert(schema::kOpVersion == 1, "the plugin version must follow the op version");

class SageAttentionPlugin final : public nvinfer1::IPluginV3,
                                  public nvinfer1::IPluginV3OneCore,
                                  public nvinfer1::IPluginV3OneBuild,
                                  public nvinfer1::IPluginV3OneRuntime {
 public:
  // `values` must be the validated form of `attrs` (decode_fields produces both).
  SageAttentionPlugin(std::string layer_name, const AttrValues& values, const schema::Attributes& attrs);
  // Copies the configuration but not the error recorder: a recorder belongs to one execution context.
  SageAttentionPlugin(const SageAttentionPlugin& other);
  SageAttentionPlugin& operator=(const SageAttentionPlugin&) = delete;
  ~SageAttentionPlugin() override = default;

  // IPluginV3
  nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
  nvinfer1::IPluginV3* clone() noexcept override;

  // IPluginV3OneCore. These, getNbOutputs and the two attribute strings return constants or members and
  // cannot throw, so they skip the try/catch every other method has.
  char const* getPluginName() const noexcept override;
  char const* getPluginVersion() const noexcept override;
  char const* getPluginNamespace() const noexcept override;

  // IPluginV3OneBuild
  int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
  int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs, nvinfer1::DataType const* inputTypes,
                             int32_t nbInputs) const noexcept override;
  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
                          int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                          nvinfer1::IExprBuilder& exprBuilder) noexcept override;
  bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                 int32_t nbOutputs) noexcept override;
  int32_t getNbOutputs() const noexcept override;
  size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;
  char const* getTimingCacheID() noexcept override;
  char const* getMetadataString() noexcept override;

  // IPluginV3OneRuntime
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
                        int32_t nbOutputs) noexcept override;
  int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                  void const* const* inputs, void* const* outputs, void* workspace,
                  cudaStream_t stream) noexcept override;
  nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
  nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

 private:
  // Runs `body`, turning exceptions into a reported error and `on_error`; every noexcept method uses it.
  template <class R, class Body>
  R guarded(const char* method, R on_error, Body&& body) const noexcept;
  void report(nvinfer1::ErrorCode code, const char* method, const std::string& message) const noexcept;
  std::string check_io_counts(int32_t nb_inputs, int32_t nb_outputs) const;
  // The attributes used to size and check a profile: the causal rule (Sq == Skv) holds per call, but a
  // profile's max shapes need not satisfy it.
  schema::Attributes profile_attrs() const;

  std::string layer_name_;
  AttrValues values_;
  schema::Attributes attrs_;
  std::string attributes_text_;  // timing-cache ID and metadata; must outlive the returned pointer
  FieldEncoder encoder_;
  nvinfer1::IErrorRecorder* recorder_ = nullptr;  // set on attachToContext clones only
  // 3 to 5, from configurePlugin / onShapeChange: enqueue is not told how many inputs it has. 0 = not yet known.
  int32_t nb_inputs_ = 0;
};

}  // namespace sage::trt
