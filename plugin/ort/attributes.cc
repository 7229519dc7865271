#include "attributes.h"

#include <vector>

namespace sage::ort {
namespace {

// Adapts OrtKernelInfo to the getter interface of schema::parse_attributes. An absent attribute makes the
// C API return a status, which we release and report as "not set" so the contract default applies.
class KernelInfoAttrs {
 public:
  explicit KernelInfoAttrs(const OrtKernelInfo* info) : info_(info) {}

  bool get_int(const char* name, int64_t& v) { return ok(api().KernelInfoGetAttribute_int64(info_, name, &v)); }
  bool get_float(const char* name, float& v) { return ok(api().KernelInfoGetAttribute_float(info_, name, &v)); }
  bool get_string(const char* name, std::string& v) {
    size_t size = 0;
    if (!ok(api().KernelInfoGetAttribute_string(info_, name, nullptr, &size))) return false;
    std::vector<char> buf(size + 1, '\0');
    if (!ok(api().KernelInfoGetAttribute_string(info_, name, buf.data(), &size))) return false;
    v.assign(buf.data());
    return true;
  }

 private:
  static bool ok(OrtStatus* status) {
    if (status == nullptr) return true;
    api().ReleaseStatus(status);
    return false;
  }
  const OrtKernelInfo* info_;
};

}  // namespace

std::string read_attributes(const OrtKernelInfo* info, schema::Attributes& out) {
  KernelInfoAttrs getter(info);
  return schema::parse_attributes(getter, out);
}

std::string node_name(const OrtKernelInfo* info) {
  size_t size = 0;
  OrtStatus* st = api().KernelInfo_GetNodeName(info, nullptr, &size);
  if (st != nullptr) {
    api().ReleaseStatus(st);
    return "<unnamed>";
  }
  std::vector<char> buf(size + 1, '\0');
  st = api().KernelInfo_GetNodeName(info, buf.data(), &size);
  if (st != nullptr) {
    api().ReleaseStatus(st);
    return "<unnamed>";
  }
  return buf[0] ? std::string(buf.data()) : std::string("<unnamed>");
}

}  // namespace sage::ort
