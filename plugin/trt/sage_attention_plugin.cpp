#include "sage_attention_plugin.h"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <memory>
#include <utility>
#include <vector>

#include "plugin_log.h"
#include "runner.h"
#include "tensor_desc.h"

namespace sage::trt {

using nvinfer1::DataType;
using nvinfer1::ErrorCode;

namespace {

// query, key, value, then attn_mask and/or key_lengths in either order, told apart by type (tensor_desc.h).
static_assert(kNbRequiredInputs == schema::kNumRequiredInputs && kMaxInputs == schema::kNumInputs,
              "the plugin's inputs are the op's");
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

// The types and dims of every input, as resolve_inputs takes them: a profile's max shapes at build time,
// the call's shapes at run time.
struct InputShapes {
  std::vector<DataType> types;
  std::vector<nvinfer1::Dims> dims;
};

InputShapes profile_max(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nb_inputs) {
  InputShapes s;
  for (int32_t i = 0; i < nb_inputs; ++i) {
    s.types.push_back(in[i].desc.type);
    s.dims.push_back(in[i].max);
  }
  return s;
}

InputShapes call_shapes(nvinfer1::PluginTensorDesc const* in, int32_t nb_inputs) {
  InputShapes s;
  for (int32_t i = 0; i < nb_inputs; ++i) {
    s.types.push_back(in[i].type);
    s.dims.push_back(in[i].dims);
  }
  return s;
}

std::string resolve(const schema::Attributes& attrs, const InputShapes& s, AttentionParams& params,
                    OptionalSlots& slots) {
  return resolve_inputs(attrs, s.types.data(), s.dims.data(), static_cast<int32_t>(s.types.size()), params, slots);
}

// Build-time queries have no data: present optional inputs get a placeholder address, so the runner plans
// (kernel path, workspace) for the call enqueue will make with real pointers.
void bind_for_planning(AttentionParams& params, const OptionalSlots& slots) {
  bind_optional_inputs(params, slots.attn_mask >= 0 ? planning_placeholder() : nullptr,
                       slots.key_lengths >= 0 ? planning_placeholder() : nullptr);
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
      recorder_(nullptr),
      nb_inputs_(other.nb_inputs_) {}

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
  if (nb_inputs >= kNbRequiredInputs && nb_inputs <= kMaxInputs && nb_outputs == kNbOutputs) return {};
  return "expected " + std::to_string(kNbRequiredInputs) + " to " + std::to_string(kMaxInputs) +
         " inputs (query, key, value, then optionally attn_mask and/or key_lengths, told apart by type) and " +
         std::to_string(kNbOutputs) + " output; got " + std::to_string(nb_inputs) + " and " + std::to_string(nb_outputs);
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
    if (err.empty()) nb_inputs_ = nbInputs;
    // desc.dims may still hold -1 here; the profile's max shapes are concrete and decide whether the device
    // can run this configuration, so an unsupported head_dim, kernel path or mask input (kernel 'sm90' takes
    // none) fails the build, not enqueue. The masks' shapes are checked against the same max shapes.
    AttentionParams params;
    OptionalSlots slots;
    if (err.empty()) err = resolve(profile_attrs(), profile_max(in, nbInputs), params, slots);
    if (err.empty()) {
      bind_for_planning(params, slots);
      err = cuda_can_implement(params);
    }
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
    OptionalSlots slots;
    if (err.empty()) err = identify_optional_inputs(inputTypes, nbInputs, slots);
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
    // No types here, so the optional inputs are told apart by rank (getOutputDataTypes and configurePlugin
    // check their types).
    OptionalSlots slots;
    if (err.empty()) err = identify_optional_by_rank(inputs, nbInputs, slots);
    // When every dimension is a build-time constant the whole contract can be checked now, so a bad graph
    // fails while the network is defined (naming the argument) instead of at the first enqueue.
    bool all_constant = err.empty();
    for (int32_t t = 0; all_constant && t < nbInputs; ++t) {
      for (int32_t i = 0; i < inputs[t].nbDims; ++i) all_constant = all_constant && inputs[t].d[i]->isConstant();
    }
    if (err.empty() && all_constant) {
      // Stand-in types for the shape rules: a bool attn_mask and an int32 key_lengths.
      std::vector<DataType> types(nbInputs, DataType::kFLOAT);
      std::vector<nvinfer1::Dims> dims(nbInputs);
      for (int32_t t = 0; t < nbInputs; ++t) {
        dims[t].nbDims = inputs[t].nbDims;
        for (int32_t i = 0; i < inputs[t].nbDims; ++i) dims[t].d[i] = inputs[t].d[i]->getConstantValue();
      }
      if (slots.attn_mask >= 0) types[slots.attn_mask] = DataType::kBOOL;
      if (slots.key_lengths >= 0) types[slots.key_lengths] = DataType::kINT32;
      AttentionParams params;
      err = resolve_inputs(attrs_, types.data(), dims.data(), nbInputs, params, slots);
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
    // Position 0 picks the element type T; key, value and the output repeat it.
    if (pos == 0) return is_supported_dtype(desc.type);
    if (pos < kNbRequiredInputs || pos >= nbInputs) return desc.type == inOut[0].desc.type;
    // An optional input: bool or T (attn_mask), int32 or int64 (key_lengths); only positions <= pos may be
    // read, so input 4 is checked against input 3 (one attn_mask and one key_lengths at most).
    const OptionalRole role = optional_role(desc.type, inOut[0].desc.type);
    if (role == OptionalRole::kNone) return false;
    return pos == kNbRequiredInputs || role != optional_role(inOut[kNbRequiredInputs].desc.type, inOut[0].desc.type);
  });
}

int32_t SageAttentionPlugin::getNbOutputs() const noexcept { return kNbOutputs; }

size_t SageAttentionPlugin::getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                                             nvinfer1::DynamicPluginTensorDesc const* /*outputs*/,
                                             int32_t nbOutputs) const noexcept {
  return guarded("getWorkspaceSize", size_t{0}, [&]() -> size_t {
    // Enough for every shape of the profile: the runner's scratch (quantized Q/K, scales, means, FP8 V, the
    // key-padding bits) grows with each dimension, so the profile's max shapes bound it. Which optional
    // inputs are present changes the plan too (kernel path, extra buffers), so they are bound for planning.
    std::string err = check_io_counts(nbInputs, nbOutputs);
    const InputShapes max_shapes = err.empty() ? profile_max(inputs, nbInputs) : InputShapes{};
    AttentionParams params;
    OptionalSlots slots;
    if (err.empty()) err = resolve(profile_attrs(), max_shapes, params, slots);
    if (!err.empty()) {
      report(ErrorCode::kINVALID_CONFIG, "getWorkspaceSize", err);
      return 0;
    }
    bind_for_planning(params, slots);
    std::vector<AttentionParams> plans{params};
    // Also size with the real attributes when the max shapes allow them, in case causality changes the need.
    AttentionParams exact;
    OptionalSlots exact_slots;
    if (resolve(attrs_, max_shapes, exact, exact_slots).empty()) {
      bind_for_planning(exact, exact_slots);
      plans.push_back(exact);
    }
    // A bool mask whose head or query dimension is 1 at run time but not at the max shape (a dynamic
    // broadcast dimension) is a key-padding mask in that call, which needs more scratch: size for it too.
    for (size_t i = 0, n = plans.size(); i < n; ++i) {
      if (plans[i].mask.kind == MaskDesc::Kind::kBool && !plans[i].mask.key_padding) {
        AttentionParams padding = plans[i];
        padding.mask.key_padding = true;
        plans.push_back(padding);
      }
    }
    size_t bytes = 0;
    for (const AttentionParams& p : plans) bytes = std::max(bytes, cuda_workspace_bytes(p));
    return bytes == 0 ? 0 : bytes + kWorkspaceAlignment - 1;
  });
}

char const* SageAttentionPlugin::getTimingCacheID() noexcept { return attributes_text_.c_str(); }
char const* SageAttentionPlugin::getMetadataString() noexcept { return attributes_text_.c_str(); }

// ----- IPluginV3OneRuntime --------------------------------------------------------------------------------

int32_t SageAttentionPlugin::onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
                                           nvinfer1::PluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  return guarded("onShapeChange", int32_t{-1}, [&]() -> int32_t {
    // Only the input count is kept (enqueue is not told it); enqueue reads everything else from its
    // descriptors. This reports bad shapes at the earliest point.
    std::string err = check_io_counts(nbInputs, nbOutputs);
    if (err.empty()) nb_inputs_ = nbInputs;
    AttentionParams params;
    OptionalSlots slots;
    if (err.empty()) err = resolve(attrs_, call_shapes(in, nbInputs), params, slots);
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
    // enqueue is not told the input count: onShapeChange (which TensorRT calls before the first enqueue and
    // whenever shapes or bindings change) or configurePlugin recorded it. The optional inputs are then told
    // apart by type again and every shape is checked, as in onShapeChange.
    std::string err;
    AttentionParams params;
    OptionalSlots slots;
    if (nb_inputs_ == 0) {
      err = "the number of inputs is unknown (neither onShapeChange nor configurePlugin was called before enqueue)";
    }
    if (err.empty()) err = resolve(attrs_, call_shapes(inputDesc, nb_inputs_), params, slots);
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
    // The same MaskDesc as the ORT op builds (resolve_optional_inputs), so a bool (B, Skv) or (B, 1, 1, Skv)
    // mask and key_lengths take the runner's key-padding path exactly as there.
    bind_optional_inputs(params, slots.attn_mask >= 0 ? inputs[slots.attn_mask] : nullptr,
                         slots.key_lengths >= 0 ? inputs[slots.key_lengths] : nullptr);
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
