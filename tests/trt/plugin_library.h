// Loads libsage_attention_trt.so the way TensorRT's IPluginRegistry::loadLibrary does: dlopen, then the
// exported getCreators / setLoggerFinder entry points. No TensorRT library is involved.
#pragma once
#include <NvInferRuntime.h>

#include <memory>
#include <string>

namespace sage_test {

class PluginLibrary {
 public:
  // Throws std::runtime_error naming the library and the missing symbol.
  explicit PluginLibrary(const std::string& path);
  // The library stays loaded for the whole process: plugins it made may still be alive at exit.
  ~PluginLibrary() = default;

  int32_t creator_count() const { return count_; }
  nvinfer1::IPluginCreatorInterface* creator_at(int32_t i) const { return creators_[i]; }
  // The V3One creator registered as (name, version, namespace), or null.
  nvinfer1::IPluginCreatorV3One* find_creator(const char* name, const char* version, const char* ns) const;
  void set_logger_finder(nvinfer1::ILoggerFinder* finder) const { set_logger_finder_(finder); }

 private:
  using GetCreators = nvinfer1::IPluginCreatorInterface* const* (*)(int32_t&);
  using SetLoggerFinder = void (*)(nvinfer1::ILoggerFinder*);
  void* handle_ = nullptr;
  nvinfer1::IPluginCreatorInterface* const* creators_ = nullptr;
  int32_t count_ = 0;
  SetLoggerFinder set_logger_finder_ = nullptr;
};

// The capability views of a plugin object (what TensorRT asks getCapabilityInterface for).
inline nvinfer1::IPluginV3OneCore* core_of(nvinfer1::IPluginV3* p) {
  return static_cast<nvinfer1::IPluginV3OneCore*>(p->getCapabilityInterface(nvinfer1::PluginCapabilityType::kCORE));
}
inline nvinfer1::IPluginV3OneBuild* build_of(nvinfer1::IPluginV3* p) {
  return static_cast<nvinfer1::IPluginV3OneBuild*>(p->getCapabilityInterface(nvinfer1::PluginCapabilityType::kBUILD));
}
inline nvinfer1::IPluginV3OneRuntime* runtime_of(nvinfer1::IPluginV3* p) {
  return static_cast<nvinfer1::IPluginV3OneRuntime*>(
      p->getCapabilityInterface(nvinfer1::PluginCapabilityType::kRUNTIME));
}

using PluginPtr = std::unique_ptr<nvinfer1::IPluginV3>;

}  // namespace sage_test
