// The library's entry point: negotiates the ORT API version and registers SageAttention in its domain for
// the CPU EP (and the CUDA EP when built with CUDA) for float32, float16 and bfloat16.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "op.h"

namespace sage::ort {
namespace {

// Below 18 the runtime lacks the status-returning kernels, shape inference and scratch buffers we use.
constexpr int kMinApiVersion = 18;

int g_api_version = 0;
const OrtApi* g_api = nullptr;

// ORT 1.N serves API versions 1..N; asking GetApi for a newer one prints an error on old runtimes.
int runtime_api_version(const OrtApiBase* base) {
  const char* text = base->GetVersionString();
  int major = 0, minor = 0;
  if (text == nullptr || std::sscanf(text, "%d.%d", &major, &minor) != 2 || major != 1) return ORT_API_VERSION;
  return minor < ORT_API_VERSION ? minor : ORT_API_VERSION;
}

template <Device D>
void add_ops(Ort::CustomOpDomain& domain, int version) {
  static SageAttentionOp<ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, D> f32(version);
  static SageAttentionOp<ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, D> f16(version);
  static SageAttentionOp<ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16, D> bf16(version);
  domain.Add(&f32);
  domain.Add(&f16);
  domain.Add(&bf16);
}

}  // namespace

int negotiated_api_version() { return g_api_version; }
const OrtApi& api() { return *g_api; }

}  // namespace sage::ort

extern "C" __attribute__((visibility("default"))) OrtStatus* ORT_API_CALL
RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* base) {
  using namespace sage::ort;
  static std::mutex mutex;
  static std::vector<std::unique_ptr<Ort::CustomOpDomain>> domains;  // must outlive every session
  std::lock_guard<std::mutex> lock(mutex);
  const int version = runtime_api_version(base);
  const OrtApi* api_table = base->GetApi(version);
  if (api_table == nullptr) {
    // Every runtime serves API 1, which is enough to report the problem.
    const std::string msg = std::string("SageAttention: ONNX Runtime ") + base->GetVersionString() +
                            " does not serve API version " + std::to_string(version);
    return base->GetApi(1)->CreateStatus(ORT_NOT_IMPLEMENTED, msg.c_str());
  }
  if (g_api == nullptr) {
    g_api = api_table;
    g_api_version = version;
    Ort::InitApi(api_table);
  }
  if (version < kMinApiVersion) {
    const std::string msg = std::string("SageAttention needs ONNX Runtime >= 1.") + std::to_string(kMinApiVersion) +
                            "; this runtime is " + base->GetVersionString();
    return api_table->CreateStatus(ORT_NOT_IMPLEMENTED, msg.c_str());
  }
  try {
    auto domain = std::make_unique<Ort::CustomOpDomain>(sage::schema::kDomain);
    add_ops<Device::kCpu>(*domain, g_api_version);
#ifdef SAGE_WITH_CUDA
    add_ops<Device::kCuda>(*domain, g_api_version);
#endif
    Ort::UnownedSessionOptions(options).Add(*domain);
    domains.push_back(std::move(domain));
    return nullptr;
  } catch (const std::exception& e) {
    return api_table->CreateStatus(ORT_FAIL, (std::string("SageAttention registration failed: ") + e.what()).c_str());
  }
}
