#include "sage_attention_plugin.h"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <memory>
#include <utility>

#include "plugin_log.h"
#include "runner.h"
#include "tensor_desc.h"

namespace sage::trt {

using nvinfer1::DataType;
using nvinfer1::ErrorCode;

namespace {

// attn_mask / key_lengths are not supported by the CUDA kernels yet, so the plugin takes the required inputs
// only and names the optional ones in its error when a node carries them.
constexpr int32_t kNbInputs = schema::kNumRequiredInputs;
constexpr int32_t kNbOutputs = schema::kNumOutputs;
constexpr int32_t kQuery = 0, kKey = 1, kValue = 2;
// The runner wants a 256-byte aligned workspace; TensorRT promises no alignment for the plugin's slice, so
// the plugin asks for the slack and aligns the pointer itself.
constexpr size_t kWorkspaceAlignment = 256;

void* align_workspace(void* workspace) {
  const auto address = reinterpret_cast<uintptr_t>(workspace);
  return reinterpret_cast<void*>((address + kWorkspaceAlignment - 1) / kWorkspaceAlignment * kWorkspaceAlignment);
}

int64_t element_count(nvinfer1::Dims const& dims) {
  int64_t n = 1;
  for (int32_t i = 0; i < dims.nbDims; ++i) n *= dims.d[i];
  return n;
}

bool same_dims(nvinfer1::Dims const& a, nvinfer1::Dims const& b) {
  return a.nbDims == b.nbDims && std::equal(a.d, a.d + std::max(a.nbDims, 0), b.d);
}

}  // namespace

SageAttentionPlugin::SageAttentionPlugin(std::string layer_name, const AttrValues& values,
                                         const schema::Attributes& attrs)
    : layer_name_(std::move(layer_name)), values_(values), attrs_(attrs), attributes_text_(attributes_text(values)) {}

SageAttentionPlugin::SageAttentionPlugin(const SageAttentionPlugin& other)
    : nvinfer1::IPluginV3(other),
      nvinfer1::IPluginV3OneCore(other),
      nvinfer1::IPluginV3OneBuild(other),
      nvinfer1::IPluginV3OneRuntime(other),
      layer_name_(other.layer_name_),
      values_(other.values_),
      attrs_(other.attrs_),
      attributes_text_(other.attributes_text_),
      encoder_(),
      recorder_(nullptr) {}

template <class R, class Body>
R SageAttentionPlugin::guarded(const char* method, R on_error, Body&& body) const noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    report(ErrorCode::kINTERNAL_ERROR, method, std::string("unexpected exception: ") + e.what());
  } catch (...) {
    report(ErrorCode::kINTERNAL_ERROR, method, "unexpected exception");
  }
  return on_error;
}

void SageAttentionPlugin::report(ErrorCode code, const char* method, const std::string& message) const noexcept {
  try {
    report_error(recorder_, code,
                 std::string(kPluginName) + " plugin (layer '" + layer_name_ + "') " + method + ": " + message);
  } catch (...) {
    report_error(recorder_, code, message);
  }
}

std::string SageAttentionPlugin::check_io_counts(int32_t nb_inputs, int32_t nb_outputs) const {
  if (nb_inputs == kNbInputs && nb_outputs == kNbOutputs) return {};
  std::string msg = "expected " + std::to_string(kNbInputs) + " inputs (query, key, value) and " +
                    std::to_string(kNbOutputs) + " output; got " + std::to_string(nb_inputs) + " and " +
                    std::to_string(nb_outputs);
  if (nb_inputs > kNbInputs) msg += " (the optional inputs 'attn_mask' and 'key_lengths' are not supported on the GPU yet)";
  return msg;
}

schema::Attributes SageAttentionPlugin::profile_attrs() const {
  schema::Attributes attrs = attrs_;
  attrs.is_causal = 0;
  return attrs;
}

// ----- IPluginV3 ------------------------------------------------------------------------------------------

nvinfer1::IPluginCapability* SageAttentionPlugin::getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept {
  return guarded("getCapabilityInterface", static_cast<nvinfer1::IPluginCapability*>(nullptr),
                 [&]() -> nvinfer1::IPluginCapability* {
                   switch (type) {
                     case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
                     case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
                     case nvinfer1::PluginCapabilityType::kRUNTIME:
                       return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
                   }
                   return nullptr;
                 });
}

nvinfer1::IPluginV3* SageAttentionPlugin::clone() noexcept {
  return guarded("clone", static_cast<nvinfer1::IPluginV3*>(nullptr),
                 [&]() -> nvinfer1::IPluginV3* { return new SageAttentionPlugin(*this); });
}

// ----- IPluginV3OneCore -----------------------------------------------------------------------------------

char const* SageAttentionPlugin::getPluginName() const noexcept { return kPluginName; }
char const* SageAttentionPlugin::getPluginVersion() const noexcept { return kPluginVersion; }
char const* SageAttentionPlugin::getPluginNamespace() const noexcept { return kPluginNamespace; }

// ----- IPluginV3OneBuild ----------------------------------------------------------------------------------

int32_t SageAttentionPlugin::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                             nvinfer1::DynamicPluginTensorDesc const* /*out*/,
                                             int32_t nbOutputs) noexcept {
  return guarded("configurePlugin", int32_t{-1}, [&]() -> int32_t {
    std::string err = check_io_counts(nbInputs, nbOutputs);
    // desc.dims may still hold -1 here; the profile's max shapes are concrete and decide whether the device
    // can run this configuration, so an unsupported head_dim or kernel path fails the build, not enqueue.
    AttentionParams params;
    if (err.empty()) {
      err = resolve_from_dims(profile_attrs(), in[kQuery].desc.type, in[kQuery].max, in[kKey].max, in[kValue].max,
                              params);
    }
    if (err.empty()) err = cuda_can_implement(params);
    if (!err.empty()) {
      report(ErrorCode::kINVALID_CONFIG, "configurePlugin", err);
      return -1;
    }
    return 0;
  });
}

int32_t SageAttentionPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                                                int32_t nbInputs) const noexcept {
  return guarded("getOutputDataTypes", int32_t{-1}, [&]() -> int32_t {
    std::string err = check_io_counts(nbInputs, nbOutputs);
    if (err.empty() && !is_supported_dtype(inputTypes[kQuery])) {
      err = std::string("input 'query' has type ") + trt_dtype_name(inputTypes[kQuery]) +
            "; allowed types: float32, float16, bfloat16";
    }
    if (err.empty() && (inputTypes[kKey] != inputTypes[kQuery] || inputTypes[kValue] != inputTypes[kQuery])) {
      err = std::string("inputs 'query', 'key', 'value' must share one type; got ") + trt_dtype_name(inputTypes[kQuery]) +
            ", " + trt_dtype_name(inputTypes[kKey]) + ", " + trt_dtype_name(inputTypes[kValue]);
    }
    if (!err.empty()) {
      report(ErrorCode::kINVALID_ARGUMENT, "getOutputDataTypes", err);
      return -1;
    }
    outputTypes[0] = inputTypes[kQuery];
    return 0;
  });
}

int32_t SageAttentionPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                                             nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t nbShapeInputs,
                                             nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                                             nvinfer1::IExprBuilder& /*exprBuilder*/) noexcept {
  return guarded("getOutputShapes", int32_t{-1}, [&]() -> int32_t {
    std::string err = check_io_counts(nbInputs, nbOutputs);
    if (err.empty() && nbShapeInputs != 0) err = "the plugin takes no shape inputs";
    // When every dimension is a build-time constant the whole contract can be checked now, so a bad graph
    // fails while the network is defined (naming the argument) instead of at the first enqueue.
    bool all_constant = err.empty();
    for (int32_t t = 0; all_constant && t < kNbInputs; ++t) {
      for (int32_t i = 0; i < inputs[t].nbDims; ++i) all_constant = all_constant && inputs[t].d[i]->isConstant();
    }
    if (err.empty() && all_constant) {
      InputDesc q, k, v;
      for (int32_t i = 0; i < inputs[kQuery].nbDims; ++i) q.dims.push_back(inputs[kQuery].d[i]->getConstantValue());
      for (int32_t i = 0; i < inputs[kKey].nbDims; ++i) k.dims.push_back(inputs[kKey].d[i]->getConstantValue());
      for (int32_t i = 0; i < inputs[kValue].nbDims; ++i) v.dims.push_back(inputs[kValue].d[i]->getConstantValue());
      AttentionParams params;
      std::vector<int64_t> out_dims;
      err = resolve_attention(attrs_, q, k, v, params, out_dims);
    } else if (err.empty()) {
      const int32_t rank = inputs[kQuery].nbDims;
      if ((rank != 3 && rank != 4) || inputs[kKey].nbDims != rank || inputs[kValue].nbDims != rank) {
        err = "inputs 'query', 'key', 'value' must all have rank 4 (layout BNSH or BSNH) or all rank 3 "
              "(batch, sequence, heads*head_dim); got ranks " +
              std::to_string(rank) + ", " + std::to_string(inputs[kKey].nbDims) + ", " +
              std::to_string(inputs[kValue].nbDims);
      }
    }
    if (!err.empty()) {
      report(ErrorCode::kINVALID_ARGUMENT, "getOutputShapes", err);
      return -1;
    }
    // The output has the query's layout and shape in every case (value head_dim equals query head_dim), so
    // the query's own expressions are the output's.
    outputs[0] = inputs[kQuery];
    return 0;
  });
}

bool SageAttentionPlugin::supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut,
                                                    int32_t nbInputs, int32_t nbOutputs) noexcept {
  return guarded("supportsFormatCombination", false, [&]() -> bool {
    if (pos < 0 || pos >= nbInputs + nbOutputs || !check_io_counts(nbInputs, nbOutputs).empty()) return false;
    nvinfer1::PluginTensorDesc const& desc = inOut[pos].desc;
    if (desc.format != nvinfer1::TensorFormat::kLINEAR) return false;
    // Position 0 picks the element type; every other input and the output must repeat it.
    return pos == 0 ? is_supported_dtype(desc.type) : desc.type == inOut[0].desc.type;
  });
}

int32_t SageAttentionPlugin::getNbOutputs() const noexcept { return kNbOutputs; }

size_t SageAttentionPlugin::getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                                             nvinfer1::DynamicPluginTensorDesc const* /*outputs*/,
                                             int32_t nbOutputs) const noexcept {
  return guarded("getWorkspaceSize", size_t{0}, [&]() -> size_t {
    // Enough for every shape of the profile: the runner's scratch (quantized Q/K, scales, means, FP8 V)
    // grows with each dimension, so the profile's max shapes bound it.
    std::string err = check_io_counts(nbInputs, nbOutputs);
    AttentionParams params;
    if (err.empty()) {
      err = resolve_from_dims(profile_attrs(), inputs[kQuery].desc.type, inputs[kQuery].max, inputs[kKey].max,
                              inputs[kValue].max, params);
    }
    if (!err.empty()) {
      report(ErrorCode::kINVALID_CONFIG, "getWorkspaceSize", err);
      return 0;
    }
    size_t bytes = cuda_workspace_bytes(params);
    // Also size with the real attributes when the max shapes allow them, in case causality changes the need.
    AttentionParams exact;
    if (resolve_from_dims(attrs_, inputs[kQuery].desc.type, inputs[kQuery].max, inputs[kKey].max, inputs[kValue].max,
                          exact)
            .empty()) {
      bytes = std::max(bytes, cuda_workspace_bytes(exact));
    }
    return bytes == 0 ? 0 : bytes + kWorkspaceAlignment - 1;
  });
}

char const* SageAttentionPlugin::getTimingCacheID() noexcept { return attributes_text_.c_str(); }
char const* SageAttentionPlugin::getMetadataString() noexcept { return attributes_text_.c_str(); }

// ----- IPluginV3OneRuntime --------------------------------------------------------------------------------

int32_t SageAttentionPlugin::onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
                                           nvinfer1::PluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  return guarded("onShapeChange", int32_t{-1}, [&]() -> int32_t {
    // Nothing is cached (enqueue reads its descriptors); this only reports bad shapes at the earliest point.
    std::string err = check_io_counts(nbInputs, nbOutputs);
    AttentionParams params;
    if (err.empty()) {
      err = resolve_from_dims(attrs_, in[kQuery].type, in[kQuery].dims, in[kKey].dims, in[kValue].dims, params);
    }
    if (!err.empty()) {
      report(ErrorCode::kINVALID_ARGUMENT, "onShapeChange", err);
      return -1;
    }
    return 0;
  });
}

int32_t SageAttentionPlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
                                     nvinfer1::PluginTensorDesc const* outputDesc, void const* const* inputs,
                                     void* const* outputs, void* workspace, cudaStream_t stream) noexcept {
  return guarded("enqueue", int32_t{-1}, [&]() -> int32_t {
    AttentionParams params;
    std::string err = resolve_from_dims(attrs_, inputDesc[kQuery].type, inputDesc[kQuery].dims, inputDesc[kKey].dims,
                                        inputDesc[kValue].dims, params);
    if (err.empty() &&
        (outputDesc[0].type != inputDesc[kQuery].type || !same_dims(outputDesc[0].dims, inputDesc[kQuery].dims))) {
      err = "the output must have the query's type and shape";
    }
    if (!err.empty()) {
      report(ErrorCode::kINVALID_ARGUMENT, "enqueue", err);
      return -1;
    }
    if (element_count(outputDesc[0].dims) == 0) return 0;  // empty query (Sq = 0 or B = 0): nothing to write
    params.q = inputs[kQuery];
    params.k = inputs[kKey];
    params.v = inputs[kValue];
    params.out = outputs[0];
    // TensorRT allocated getWorkspaceSize() for the profile's max shapes, which covers this call's shapes
    // (the runner's scratch never shrinks as a dimension grows).
    const size_t bytes = cuda_workspace_bytes(params);
    err = run_cuda_attention(params, bytes ? align_workspace(workspace) : workspace, bytes, stream);
    if (!err.empty()) {
      report(ErrorCode::kFAILED_EXECUTION, "enqueue", err);
      return -1;
    }
    return 0;
  });
}

nvinfer1::IPluginV3* SageAttentionPlugin::attachToContext(nvinfer1::IPluginResourceContext* context) noexcept {
  return guarded("attachToContext", static_cast<nvinfer1::IPluginV3*>(nullptr), [&]() -> nvinfer1::IPluginV3* {
    // The kernels need no per-context resources (no handles; scratch is TensorRT's workspace), so the
    // attached clone only takes the context's error recorder.
    auto attached = std::make_unique<SageAttentionPlugin>(*this);
    attached->recorder_ = context ? context->getErrorRecorder() : nullptr;
    return attached.release();
  });
}

nvinfer1::PluginFieldCollection const* SageAttentionPlugin::getFieldsToSerialize() noexcept {
  return guarded("getFieldsToSerialize", static_cast<nvinfer1::PluginFieldCollection const*>(nullptr),
                 [&]() { return encoder_.encode(values_); });
}

}  // namespace sage::trt
