// The library's only exported symbols (see sage_attention_trt.map): the entry points TensorRT looks up after
// IPluginRegistry::loadLibrary / trtexec --dynamicPlugins. The library does not use
// REGISTER_TENSORRT_PLUGIN: that needs libnvinfer's getPluginRegistry at load time, and a library both
// loaded that way and registered statically fails loadLibrary ("already registered").
#include <NvInferRuntime.h>

#include <cstdint>

#include "plugin_log.h"
#include "sage_attention_creator.h"

#define SAGE_TRT_EXPORT __attribute__((visibility("default")))

namespace {

nvinfer1::IPluginCreatorInterface* const* creators(int32_t& count) noexcept {
  try {
    static sage::trt::SageAttentionCreator creator;
    static nvinfer1::IPluginCreatorInterface* const list[] = {&creator};
    count = static_cast<int32_t>(sizeof(list) / sizeof(list[0]));
    return list;
  } catch (...) {
    count = 0;  // constructing the creator ran out of memory; report no creators rather than crash the host
    return nullptr;
  }
}

}  // namespace

extern "C" {

SAGE_TRT_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
  return creators(nbCreators);
}

SAGE_TRT_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder) { sage::trt::set_logger_finder(finder); }

}  // extern "C"
