#include "plugin_library.h"

#include <dlfcn.h>

#include <cstring>
#include <stdexcept>

namespace sage_test {

PluginLibrary::PluginLibrary(const std::string& path) {
  handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle_) throw std::runtime_error("cannot dlopen " + path + ": " + dlerror());
  auto get_creators = reinterpret_cast<GetCreators>(dlsym(handle_, "getCreators"));
  set_logger_finder_ = reinterpret_cast<SetLoggerFinder>(dlsym(handle_, "setLoggerFinder"));
  if (!get_creators || !set_logger_finder_) {
    throw std::runtime_error(path + " does not export getCreators and setLoggerFinder");
  }
  creators_ = get_creators(count_);
  if (!creators_) count_ = 0;
}

nvinfer1::IPluginCreatorV3One* PluginLibrary::find_creator(const char* name, const char* version,
                                                           const char* ns) const {
  for (int32_t i = 0; i < count_; ++i) {
    nvinfer1::IPluginCreatorInterface* c = creators_[i];
    // TensorRT checks the interface kind before casting; so do we.
    if (!c || std::strcmp(c->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") != 0) continue;
    auto* v3 = static_cast<nvinfer1::IPluginCreatorV3One*>(c);
    if (std::strcmp(v3->getPluginName(), name) == 0 && std::strcmp(v3->getPluginVersion(), version) == 0 &&
        std::strcmp(v3->getPluginNamespace(), ns) == 0) {
      return v3;
    }
  }
  return nullptr;
}

}  // namespace sage_test
