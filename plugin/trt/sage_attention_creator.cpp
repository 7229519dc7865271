#include "sage_attention_creator.h"

#include <exception>
#include <string>

#include "plugin_fields.h"
#include "plugin_log.h"
#include "sage_attention_plugin.h"

namespace sage::trt {

SageAttentionCreator::SageAttentionCreator() : field_names_(field_descriptions()) {
  field_collection_.nbFields = static_cast<int32_t>(field_names_.size());
  field_collection_.fields = field_names_.data();
}

nvinfer1::IPluginV3* SageAttentionCreator::createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fc,
                                                        nvinfer1::TensorRTPhase phase) noexcept {
  const std::string layer = name ? name : "";
  try {
    // Both phases read the same fields: getFieldsToSerialize writes exactly the contract's attributes, so a
    // deserialized plugin is validated like a freshly parsed one.
    AttrValues values;
    schema::Attributes attrs;
    const std::string err = decode_fields(fc, values, attrs);
    if (!err.empty()) {
      const char* when = phase == nvinfer1::TensorRTPhase::kBUILD ? "" : " (while deserializing an engine)";
      report_error(nullptr, nvinfer1::ErrorCode::kINVALID_ARGUMENT,
                   std::string(kPluginName) + " node '" + layer + "'" + when + ": " + err);
      return nullptr;
    }
    return new SageAttentionPlugin(layer, values, attrs);
  } catch (const std::exception& e) {
    report_error(nullptr, nvinfer1::ErrorCode::kINTERNAL_ERROR,
                 std::string(kPluginName) + " node '" + layer + "': createPlugin failed: " + e.what());
  } catch (...) {
    report_error(nullptr, nvinfer1::ErrorCode::kINTERNAL_ERROR,
                 std::string(kPluginName) + " node '" + layer + "': createPlugin failed");
  }
  return nullptr;
}

nvinfer1::PluginFieldCollection const* SageAttentionCreator::getFieldNames() noexcept { return &field_collection_; }
char const* SageAttentionCreator::getPluginName() const noexcept { return kPluginName; }
char const* SageAttentionCreator::getPluginVersion() const noexcept { return kPluginVersion; }
char const* SageAttentionCreator::getPluginNamespace() const noexcept { return kPluginNamespace; }

}  // namespace sage::trt
