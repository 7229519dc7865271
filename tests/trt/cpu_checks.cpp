// CPU checks of the plugin's TensorRT-facing behaviour: identity, fields, build-time queries, output
// shapes through an expression builder, serialization round trips, clone/attach, and the wording of
// attribute errors. Nothing here touches a GPU.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "driver.h"
#include "op_schema.gen.h"

namespace sage_test {
namespace {

using nvinfer1::DataType;
using nvinfer1::TensorRTPhase;
using A = OnnxAttribute::Type;

// A node as the graph rewrite emits it, plus two attributes the creator does not list: plugin_version
// (read by the parser for the registry lookup) and an unrelated one; the parser drops both.
const std::vector<OnnxAttribute> kTypicalNode = {
    {"layout", A::kString, "BSNH"}, {"is_causal", A::kInt, "1"},       {"scale", A::kFloat, "0.125"},
    {"pv_dtype", A::kString, "fp16"}, {"smooth_q", A::kInt, "1"},      {"plugin_version", A::kString, "1"},
    {"note_for_humans", A::kString, "dropped by the parser"},
};

std::vector<std::string> split(const std::string& text, const std::string& sep) {
  std::vector<std::string> parts;
  size_t start = 0, at;
  while ((at = text.find(sep, start)) != std::string::npos) {
    parts.push_back(text.substr(start, at - start));
    start = at + sep.size();
  }
  parts.push_back(text.substr(start));
  return parts;
}

std::string fields_text(nvinfer1::IPluginV3* p) {
  const nvinfer1::PluginFieldCollection* fc = runtime_of(p)->getFieldsToSerialize();
  return fc ? describe_fields(*fc) : "(null)";
}

bool same_serialized(nvinfer1::IPluginV3* a, nvinfer1::IPluginV3* b, std::string& why) {
  FieldList fa, fb;  // copy first: each plugin's collection is valid only until its next call
  fa.add_all(*runtime_of(a)->getFieldsToSerialize());
  fb.add_all(*runtime_of(b)->getFieldsToSerialize());
  return same_fields(*fa.get(), *fb.get(), why);
}

// Expects createPlugin to refuse `fields` and log an error that contains every piece of `expected`.
void expect_rejected(Checks& check, const Harness& h, FieldList& fields, TensorRTPhase phase,
                     const std::vector<std::string>& expected, const std::string& what) {
  const size_t errors = h.logger.error_count();
  PluginPtr p(h.creator->createPlugin("bad_node", fields.get(), phase));
  const std::string msg = h.logger.last_error();
  bool worded = h.logger.error_count() > errors;
  for (const std::string& piece : expected) worded = worded && contains(msg, piece);
  check(!p && worded, "rejects " + what, msg);
}

void expect_node_rejected(Checks& check, const Harness& h, const std::vector<OnnxAttribute>& attrs,
                          const std::vector<std::string>& expected, const std::string& what) {
  FieldList fields;
  add_parser_fields(fields, *h.creator->getFieldNames(), attrs);
  expect_rejected(check, h, fields, TensorRTPhase::kBUILD, expected, what);
}

// A call that must fail and log an error containing `piece`. `failed` is evaluated before the log is
// read (function arguments have no evaluation order, so the log must not be read beside the call).
void expect_logged(Checks& check, const Harness& h, bool failed, const std::string& piece, const std::string& what) {
  const std::string msg = h.logger.last_error();
  check(failed && contains(msg, piece), what, msg);
}

void check_library(Checks& check, const Harness& h) {
  check.section("library and creator");
  check(h.library.creator_count() == 1, "getCreators returns one creator");
  nvinfer1::IPluginCreatorInterface* c = h.library.creator_at(0);
  check(c && std::strcmp(c->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") == 0, "creator kind is V3One");
  check(h.creator != nullptr, "creator found as (SageAttention, 1, \"\")");
}

void check_field_names(Checks& check, const Harness& h) {
  check.section("getFieldNames");
  const nvinfer1::PluginFieldCollection* fc = h.creator->getFieldNames();
  check(fc && fc->nbFields == sage::schema::kNumAttrs, "one field per schema attribute");
  if (!fc || fc->nbFields != sage::schema::kNumAttrs) return;
  for (int i = 0; i < sage::schema::kNumAttrs; ++i) {
    const auto& spec = sage::schema::kAttrSpecs[i];
    const nvinfer1::PluginFieldType want = spec.type == sage::schema::AttrType::kInt     ? nvinfer1::PluginFieldType::kINT32
                                           : spec.type == sage::schema::AttrType::kFloat ? nvinfer1::PluginFieldType::kFLOAT32
                                                                                          : nvinfer1::PluginFieldType::kCHAR;
    check(std::strcmp(fc->fields[i].name, spec.name) == 0 && fc->fields[i].type == want,
          std::string("field '") + spec.name + "' advertised with the parser's type");
  }
}

void check_identity_and_types(Checks& check, const Harness& h, nvinfer1::IPluginV3* p) {
  check.section("identity, capabilities, output types, formats");
  auto* core = core_of(p);
  auto* build = build_of(p);
  auto* runtime = runtime_of(p);
  check(core && build && runtime, "core, build and runtime capabilities");
  if (!core || !build || !runtime) return;
  check(std::strcmp(core->getInterfaceInfo().kind, "PLUGIN_V3ONE_CORE") == 0 &&
            std::strcmp(build->getInterfaceInfo().kind, "PLUGIN_V3ONE_BUILD") == 0 &&
            std::strcmp(runtime->getInterfaceInfo().kind, "PLUGIN_V3ONE_RUNTIME") == 0,
        "capability interface kinds");
  check(std::strcmp(core->getPluginName(), h.creator->getPluginName()) == 0 &&
            std::strcmp(core->getPluginVersion(), h.creator->getPluginVersion()) == 0 &&
            std::strcmp(core->getPluginNamespace(), h.creator->getPluginNamespace()) == 0,
        "plugin and creator report the same name, version, namespace");
  check(build->getNbOutputs() == 1, "getNbOutputs == 1");

  for (DataType t : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16}) {
    DataType in[3] = {t, t, t}, out[1] = {DataType::kINT8};
    check(build->getOutputDataTypes(out, 1, in, 3) == 0 && out[0] == t,
          "getOutputDataTypes copies input type " + std::to_string(static_cast<int>(t)));
  }
  DataType mixed[3] = {DataType::kHALF, DataType::kBF16, DataType::kHALF}, out[1];
  expect_logged(check, h, build->getOutputDataTypes(out, 1, mixed, 3) != 0, "share one type",
                "getOutputDataTypes rejects mixed input types");
  DataType ints[3] = {DataType::kINT32, DataType::kINT32, DataType::kINT32};
  expect_logged(check, h, build->getOutputDataTypes(out, 1, ints, 3) != 0, "allowed types",
                "getOutputDataTypes rejects int32");

  const nvinfer1::Dims d = make_dims({2, 128, 8, 64});
  auto io = [&](DataType t0, DataType t, nvinfer1::TensorFormat f = nvinfer1::TensorFormat::kLINEAR) {
    std::vector<nvinfer1::DynamicPluginTensorDesc> v(4, dynamic_desc(t, d, f));
    v[0] = dynamic_desc(t0, d);
    return v;
  };
  for (DataType t : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16}) {
    auto v = io(t, t);
    check(build->supportsFormatCombination(0, v.data(), 3, 1) && build->supportsFormatCombination(1, v.data(), 3, 1) &&
              build->supportsFormatCombination(2, v.data(), 3, 1) && build->supportsFormatCombination(3, v.data(), 3, 1),
          "linear " + std::to_string(static_cast<int>(t)) + " accepted at every position");
  }
  for (DataType t : {DataType::kINT8, DataType::kINT32, DataType::kFP8, DataType::kINT64}) {
    auto v = io(t, t);
    check(!build->supportsFormatCombination(0, v.data(), 3, 1), "type " + std::to_string(static_cast<int>(t)) + " refused");
  }
  auto half_nonlinear = io(DataType::kHALF, DataType::kHALF, nvinfer1::TensorFormat::kHWC8);
  half_nonlinear[0] = dynamic_desc(DataType::kHALF, d, nvinfer1::TensorFormat::kHWC8);
  check(!build->supportsFormatCombination(0, half_nonlinear.data(), 3, 1), "non-linear format refused");
  auto mixed_io = io(DataType::kHALF, DataType::kBF16);
  check(!build->supportsFormatCombination(1, mixed_io.data(), 3, 1) &&
            !build->supportsFormatCombination(3, mixed_io.data(), 3, 1),
        "key/output must repeat the query's type");
  auto ok_io = io(DataType::kHALF, DataType::kHALF);
  check(!build->supportsFormatCombination(4, ok_io.data(), 3, 1) && !build->supportsFormatCombination(-1, ok_io.data(), 3, 1),
        "positions outside [0, 4) refused");

  const char* id = build->getTimingCacheID();
  check(id && contains(id, "layout=BSNH") && contains(id, "is_causal=1") && contains(id, "scale=0.125"),
        "timing-cache ID encodes the attributes", id ? id : "(null)");
}

void check_output_shapes(Checks& check, const Harness& h, nvinfer1::IPluginV3* causal_bsnh) {
  check.section("getOutputShapes (fake IExprBuilder)");
  auto* build = build_of(causal_bsnh);
  auto shapes = [&](nvinfer1::IPluginV3OneBuild* b, FakeExprBuilder& eb, const std::vector<int64_t>& q,
                    const std::vector<int64_t>& k, const std::vector<int64_t>& v, nvinfer1::DimsExprs& out) {
    nvinfer1::DimsExprs in[3] = {eb.dims(q), eb.dims(k), eb.dims(v)};
    out = nvinfer1::DimsExprs{};
    const int32_t rc = b->getOutputShapes(in, 3, nullptr, 0, &out, 1, eb);
    bool same = rc == 0 && out.nbDims == in[0].nbDims;
    for (int32_t i = 0; same && i < out.nbDims; ++i) same = out.d[i] == in[0].d[i];
    return std::make_pair(rc, same);
  };
  {
    FakeExprBuilder eb;
    nvinfer1::DimsExprs out;
    auto [rc, same] = shapes(build, eb, {2, 128, 8, 64}, {2, 128, 2, 64}, {2, 128, 2, 64}, out);
    bool values = rc == 0;
    const int64_t want[4] = {2, 128, 8, 64};
    for (int i = 0; values && i < 4; ++i) values = out.d[i]->isConstant() && out.d[i]->getConstantValue() == want[i];
    check(rc == 0 && same && values, "constant BSNH GQA dims: output = query dims");
  }
  {
    FakeExprBuilder eb;
    nvinfer1::DimsExprs out;
    auto [rc, same] = shapes(build, eb, {-1, -1, 8, 64}, {-1, -1, 2, 64}, {-1, -1, 2, 64}, out);
    check(rc == 0 && same, "dynamic batch/sequence: output expressions are the query's");
  }
  struct Bad {
    std::vector<int64_t> q, k, v;
    const char* expect;
    const char* what;
  };
  const Bad bad[] = {
      {{2, 128, 8, 64}, {2, 256, 2, 64}, {2, 255, 2, 64}, "value", "value shape differs from key (constants)"},
      {{2, 128, 8, 64}, {2, 128, 2, 32}, {2, 128, 2, 32}, "head_dim", "head_dim mismatch (constants)"},
      {{2, 128, 8, 64}, {2, 128, 3, 64}, {2, 128, 3, 64}, "GQA", "Hq not a multiple of Hkv (constants)"},
      {{-1, -1, 8, 64}, {-1, -1, 128}, {-1, -1, 128}, "rank", "rank mismatch (dynamic)"},
      {{-1, 8, -1, 64, 1}, {-1, 8, -1, 64, 1}, {-1, 8, -1, 64, 1}, "rank", "rank 5 (dynamic)"},
  };
  for (const Bad& b : bad) {
    FakeExprBuilder eb;
    nvinfer1::DimsExprs out;
    expect_logged(check, h, shapes(build, eb, b.q, b.k, b.v, out).first != 0, b.expect, std::string("rejects ") + b.what);
  }

  PluginPtr packed = h.create_from_node({{"q_num_heads", A::kInt, "8"}, {"kv_num_heads", A::kInt, "2"}});
  PluginPtr plain = h.create_from_node({});
  if (check(packed && plain, "3-D plugins created")) {
    FakeExprBuilder eb;
    nvinfer1::DimsExprs out;
    check(shapes(build_of(packed.get()), eb, {2, 128, 512}, {2, 96, 128}, {2, 96, 128}, out).second,
          "3-D (B, S, H*D) with head counts: output = query dims");
    check(shapes(build_of(packed.get()), eb, {2, -1, 512}, {2, -1, 128}, {2, -1, 128}, out).second,
          "3-D dynamic sequence: output = query dims");
    expect_logged(check, h, shapes(build_of(plain.get()), eb, {2, 128, 512}, {2, 96, 128}, {2, 96, 128}, out).first != 0,
                  "q_num_heads", "3-D without head counts rejected naming q_num_heads");
  }
}

void check_workspace_and_runtime(Checks& check, const Harness& h, nvinfer1::IPluginV3* causal_bsnh) {
  check.section("getWorkspaceSize, onShapeChange, enqueue (no GPU work)");
  auto* build = build_of(causal_bsnh);
  auto profile = [](const std::vector<int64_t>& q_max, const std::vector<int64_t>& kv_max) {
    std::vector<nvinfer1::DynamicPluginTensorDesc> v;
    for (const auto* m : {&q_max, &kv_max, &kv_max, &q_max}) {
      auto d = dynamic_desc(DataType::kHALF, make_dims({-1, -1, (*m)[2], (*m)[3]}));
      d.min = make_dims({1, 1, (*m)[2], (*m)[3]});
      d.opt = d.max = make_dims(*m);
      v.push_back(d);
    }
    return v;
  };
  const size_t errors = h.logger.error_count();
  auto small = profile({2, 128, 8, 64}, {2, 128, 2, 64});
  auto large = profile({2, 1024, 8, 64}, {2, 1024, 2, 64});
  auto ragged = profile({2, 512, 8, 64}, {2, 1024, 2, 64});  // causal op, profile max Sq != max Skv: legal
  const size_t ws_small = build->getWorkspaceSize(small.data(), 3, small.data() + 3, 1);
  const size_t ws_large = build->getWorkspaceSize(large.data(), 3, large.data() + 3, 1);
  const size_t ws_ragged = build->getWorkspaceSize(ragged.data(), 3, ragged.data() + 3, 1);
  check(ws_small > 0 && ws_large >= ws_small, "workspace sized from the profile max (grows with it)",
        std::to_string(ws_small) + " <= " + std::to_string(ws_large));
  check(ws_ragged > 0 && h.logger.error_count() == errors, "causal op with max Sq != max Skv still gets a workspace");

  auto* runtime = runtime_of(causal_bsnh);
  const auto q = tensor_desc(DataType::kHALF, make_dims({2, 64, 8, 64}));
  const auto kv = tensor_desc(DataType::kHALF, make_dims({2, 64, 2, 64}));
  const nvinfer1::PluginTensorDesc good[3] = {q, kv, kv}, out[1] = {q};
  check(runtime->onShapeChange(good, 3, out, 1) == 0, "onShapeChange accepts valid shapes");
  const auto kv_bad = tensor_desc(DataType::kHALF, make_dims({2, 64, 2, 32}));
  const nvinfer1::PluginTensorDesc bad[3] = {q, kv_bad, kv_bad};
  expect_logged(check, h, runtime->onShapeChange(bad, 3, out, 1) != 0, "head_dim", "onShapeChange rejects a head_dim mismatch");
  check(runtime->enqueue(bad, out, nullptr, nullptr, nullptr, nullptr) != 0, "enqueue rejects bad shapes before any GPU work");

  PluginPtr plain = h.create_from_node({});
  if (check(plain != nullptr, "default plugin created")) {
    const auto q0 = tensor_desc(DataType::kHALF, make_dims({1, 2, 0, 64}));
    const auto kv0 = tensor_desc(DataType::kHALF, make_dims({1, 2, 16, 64}));
    const nvinfer1::PluginTensorDesc in0[3] = {q0, kv0, kv0}, out0[1] = {q0};
    // enqueue is not told the input count; TensorRT calls onShapeChange before the first enqueue.
    expect_logged(check, h, runtime_of(plain.get())->enqueue(in0, out0, nullptr, nullptr, nullptr, nullptr) != 0,
                  "number of inputs is unknown", "enqueue before onShapeChange/configurePlugin refused, saying why");
    check(runtime_of(plain.get())->onShapeChange(in0, 3, out0, 1) == 0 &&
              runtime_of(plain.get())->enqueue(in0, out0, nullptr, nullptr, nullptr, nullptr) == 0,
          "empty query (Sq = 0): enqueue succeeds without launching");
  }
}

// ----- optional inputs ------------------------------------------------------------------------------------

// Like expect_logged, with every piece required.
void expect_logged_all(Checks& check, const Harness& h, bool failed, const std::vector<std::string>& pieces,
                       const std::string& what) {
  const std::string msg = h.logger.last_error();
  bool worded = failed;
  for (const std::string& piece : pieces) worded = worded && contains(msg, piece);
  check(worded, what, msg);
}

const char* type_name(DataType t) {
  switch (t) {
    case DataType::kFLOAT: return "f32";
    case DataType::kHALF: return "f16";
    case DataType::kBF16: return "bf16";
    case DataType::kBOOL: return "bool";
    case DataType::kINT32: return "i32";
    case DataType::kINT64: return "i64";
    case DataType::kINT8: return "i8";
    case DataType::kUINT8: return "u8";
    case DataType::kFP8: return "fp8";
    default: return "?";
  }
}

std::string types_text(const std::vector<DataType>& types) {
  std::string t = "(";
  for (size_t i = 0; i < types.size(); ++i) t += std::string(i ? ", " : "") + type_name(types[i]);
  return t + ")";
}

constexpr DataType H = DataType::kHALF, BOOL = DataType::kBOOL, I32 = DataType::kINT32, I64 = DataType::kINT64;

void check_optional_types(Checks& check, const Harness& h, nvinfer1::IPluginV3* p) {
  check.section("optional inputs: 4 or 5 inputs, attn_mask / key_lengths told apart by type");
  auto* build = build_of(p);
  const std::vector<std::vector<DataType>> accepted = {
      {H, H, H, BOOL},        {H, H, H, H},          {H, H, H, I32},
      {H, H, H, I64},         {H, H, H, BOOL, I64},  {H, H, H, I32, H},
      {H, H, H, I64, BOOL},   {DataType::kBF16, DataType::kBF16, DataType::kBF16, DataType::kBF16, I32},
      {DataType::kFLOAT, DataType::kFLOAT, DataType::kFLOAT, I64, DataType::kFLOAT},
  };
  for (const auto& in : accepted) {
    DataType out[1] = {DataType::kINT8};
    check(build->getOutputDataTypes(out, 1, in.data(), static_cast<int32_t>(in.size())) == 0 && out[0] == in[0],
          "getOutputDataTypes accepts " + types_text(in));
  }
  struct Refused {
    std::vector<DataType> in;
    std::vector<std::string> pieces;
    const char* what;
  };
  const Refused refused[] = {
      {{H, H, H, DataType::kFLOAT}, {"layer 'mask_node'", "input 3 has type float32", "bool or float16", "int32 or int64"},
       "a float32 mask next to a float16 query (additive masks have the query's type)"},
      {{H, H, H, DataType::kBF16}, {"input 3 has type bfloat16", "'attn_mask'", "'key_lengths'"}, "a bfloat16 mask, float16 query"},
      {{H, H, H, DataType::kINT8}, {"input 3 has type int8"}, "int8 at input 3"},
      {{H, H, H, BOOL, DataType::kUINT8}, {"input 4 has type uint8"}, "uint8 at input 4"},
      {{H, H, H, BOOL, H}, {"inputs 3 and 4 are both 'attn_mask' (types bool and float16)", "at most one"}, "two masks (bool, additive)"},
      {{H, H, H, BOOL, BOOL}, {"inputs 3 and 4 are both 'attn_mask'"}, "two bool masks"},
      {{H, H, H, I32, I64}, {"inputs 3 and 4 are both 'key_lengths' (types int32 and int64)"}, "two key_lengths"},
      {{H, H, H, BOOL, I32, I32}, {"3 to 5 inputs", "got 6"}, "six inputs"},
      {{H, H}, {"3 to 5 inputs", "got 2"}, "two inputs"},
  };
  for (const Refused& r : refused) {
    DataType out[1];
    expect_logged_all(check, h, build->getOutputDataTypes(out, 1, r.in.data(), static_cast<int32_t>(r.in.size())) != 0,
                      r.pieces, std::string("getOutputDataTypes rejects ") + r.what);
  }
}

void check_optional_formats(Checks& check, nvinfer1::IPluginV3* p) {
  check.section("supportsFormatCombination with optional inputs");
  auto* build = build_of(p);
  const nvinfer1::Dims d = make_dims({2, 8, 128, 64});
  // Inputs `in`, then the output of type `out`; `mask_format` for input 3.
  auto io = [&](const std::vector<DataType>& in, DataType out,
                nvinfer1::TensorFormat mask_format = nvinfer1::TensorFormat::kLINEAR) {
    std::vector<nvinfer1::DynamicPluginTensorDesc> v;
    for (size_t i = 0; i < in.size(); ++i) v.push_back(dynamic_desc(in[i], d, i == 3 ? mask_format : nvinfer1::TensorFormat::kLINEAR));
    v.push_back(dynamic_desc(out, d));
    return v;
  };
  auto answers = [&](const std::vector<DataType>& in, DataType out, int32_t pos,
                     nvinfer1::TensorFormat mask_format = nvinfer1::TensorFormat::kLINEAR) {
    auto v = io(in, out, mask_format);
    return build->supportsFormatCombination(pos, v.data(), static_cast<int32_t>(in.size()), 1);
  };
  const std::vector<std::vector<DataType>> accepted = {
      {H, H, H, BOOL}, {H, H, H, H}, {H, H, H, I32}, {H, H, H, I64}, {H, H, H, BOOL, I64}, {H, H, H, I64, BOOL},
      {H, H, H, H, I32}, {H, H, H, I32, H},
  };
  for (const auto& in : accepted) {
    bool all = true;
    for (int32_t pos = 0; pos <= static_cast<int32_t>(in.size()); ++pos) all = all && answers(in, H, pos);
    check(all, "accepted at every position: " + types_text(in) + " -> f16");
  }
  for (DataType t : {DataType::kFLOAT, DataType::kBF16, DataType::kINT8, DataType::kUINT8, DataType::kFP8}) {
    check(!answers({H, H, H, t}, H, 3), std::string("input 3 of type ") + type_name(t) + " refused (query f16)");
  }
  check(answers({DataType::kFLOAT, DataType::kFLOAT, DataType::kFLOAT, DataType::kFLOAT}, DataType::kFLOAT, 3) &&
            answers({DataType::kBF16, DataType::kBF16, DataType::kBF16, DataType::kBF16}, DataType::kBF16, 3),
        "an additive mask follows the query's type (f32, bf16)");
  check(!answers({H, H, H, BOOL, BOOL}, H, 4) && !answers({H, H, H, BOOL, H}, H, 4) && !answers({H, H, H, H, BOOL}, H, 4) &&
            !answers({H, H, H, I32, I64}, H, 4) && !answers({H, H, H, I64, I64}, H, 4),
        "input 4 refused when it takes input 3's role");
  check(!answers({H, H, H, BOOL, DataType::kINT8}, H, 4), "input 4 of type i8 refused");
  check(!answers({H, H, H, BOOL}, H, 3, nvinfer1::TensorFormat::kHWC8) &&
            !answers({H, H, H, I32}, H, 3, nvinfer1::TensorFormat::kCHW32),
        "non-linear optional inputs refused");
  check(!answers({H, H, H, BOOL}, BOOL, 4) && !answers({H, H, H, BOOL, I32}, I32, 5) && answers({H, H, H, BOOL, I32}, H, 5),
        "the output (position nbInputs) must have the query's type");
  {
    auto v = io({H, H, H, BOOL, I32}, H);
    check(!build->supportsFormatCombination(6, v.data(), 5, 1) && !build->supportsFormatCombination(-1, v.data(), 5, 1),
          "positions outside [0, 6) refused with 5 inputs");
    auto six = io({H, H, H, BOOL, I32, I64}, H);
    check(!build->supportsFormatCombination(0, six.data(), 6, 1), "6 inputs refused");
  }
}

void check_optional_shapes(Checks& check, const Harness& h, nvinfer1::IPluginV3* p) {
  check.section("getOutputShapes with optional inputs (told apart by rank; shapes through the shared resolver)");
  auto* build = build_of(p);
  // BNSH, GQA: query (2, 8, 128, 64), key/value (2, 2, 96, 64): B = 2, Hq = 8, Sq = 128, Skv = 96.
  const std::vector<int64_t> q = {2, 8, 128, 64}, kv = {2, 2, 96, 64};
  auto shapes = [&](const std::vector<std::vector<int64_t>>& extra, bool dynamic = false) {
    FakeExprBuilder eb;
    std::vector<nvinfer1::DimsExprs> in;
    auto dyn = [&](std::vector<int64_t> d) {
      if (dynamic) d[0] = -1;  // a dynamic batch everywhere
      return d;
    };
    for (const auto* t : {&q, &kv, &kv}) in.push_back(eb.dims(dyn(*t)));
    for (const auto& e : extra) in.push_back(eb.dims(dynamic ? dyn(e) : e));
    nvinfer1::DimsExprs out{};
    const int32_t rc = build->getOutputShapes(in.data(), static_cast<int32_t>(in.size()), nullptr, 0, &out, 1, eb);
    bool same = rc == 0 && out.nbDims == in[0].nbDims;
    for (int32_t i = 0; same && i < out.nbDims; ++i) same = out.d[i] == in[0].d[i];
    return same;
  };
  struct Good {
    std::vector<std::vector<int64_t>> extra;
    const char* what;
  };
  const Good good[] = {
      {{{2, 96}}, "key padding (B, Skv)"},
      {{{2, 1, 1, 96}}, "key padding (B, 1, 1, Skv)"},
      {{{2, 8, 128, 96}}, "full (B, Hq, Sq, Skv)"},
      {{{1, 1, 128, 96}}, "broadcast (1, 1, Sq, Skv)"},
      {{{2}}, "key_lengths (B)"},
      {{{2, 1, 128, 96}, {2}}, "mask then key_lengths"},
      {{{2}, {2, 96}}, "key_lengths then mask"},
  };
  for (const Good& g : good) check(shapes(g.extra), std::string("constant shapes accepted: ") + g.what);
  check(shapes({{2, 96}, {2}}, true) && shapes({{2, 1, 1, 96}}, true), "dynamic batch with optional inputs: output = query dims");
  struct Bad {
    std::vector<std::vector<int64_t>> extra;
    std::vector<std::string> pieces;
    const char* what;
  };
  const Bad bad[] = {
      {{{2, 97}}, {"layer 'mask_node'", "getOutputShapes", "input 3 (attn_mask)", "[2, 97]", "[2, 96]"}, "(B, Skv + 1) mask"},
      {{{3, 96}}, {"input 3 (attn_mask)", "[3, 96]"}, "(B + 1, Skv) mask"},
      {{{2, 3, 128, 96}}, {"input 3 (attn_mask)", "dimension 1", "query heads"}, "mask with 3 heads (Hq = 8)"},
      {{{2, 8, 128, 95}}, {"input 3 (attn_mask)", "dimension 3"}, "mask with Skv - 1 keys"},
      {{{2, 8, 64, 96}}, {"input 3 (attn_mask)", "dimension 2", "query length"}, "mask with Sq / 2 rows"},
      {{{3}}, {"input 3 (key_lengths)", "[3]", "(batch)"}, "key_lengths of B + 1"},
      {{{2, 96}, {1}}, {"input 4 (key_lengths)", "[1]"}, "key_lengths of 1 after a mask"},
      {{{2}, {2, 95}}, {"input 4 (attn_mask)"}, "a bad mask after key_lengths"},
      {{{2, 128, 96}}, {"input 3 has rank 3", "'attn_mask'", "'key_lengths'"}, "a rank-3 extra input"},
      {{{2, 96}, {2, 1, 1, 96}}, {"inputs 3 and 4 are both 'attn_mask' (ranks 2 and 4)"}, "two masks"},
      {{{2}, {2}}, {"inputs 3 and 4 are both 'key_lengths' (ranks 1 and 1)"}, "two key_lengths"},
  };
  for (const Bad& b : bad) {
    expect_logged_all(check, h, !shapes(b.extra), b.pieces, std::string("constant shapes rejected: ") + b.what);
  }
  expect_logged_all(check, h, !shapes({{2, 96, 1, 1, 1}}, true), {"input 3 has rank 5"}, "dynamic: a rank-5 extra input rejected");
}

// Profile descriptors: every input linear with min = opt = max = `dims`, except that a -1 in `dims` makes
// that dimension dynamic with max taken from `max`.
std::vector<nvinfer1::DynamicPluginTensorDesc> profile_io(const std::vector<DataType>& types,
                                                         const std::vector<std::vector<int64_t>>& max) {
  std::vector<nvinfer1::DynamicPluginTensorDesc> v;
  for (size_t i = 0; i < types.size(); ++i) {
    auto d = dynamic_desc(types[i], make_dims(max[i]));
    std::vector<int64_t> build_dims = max[i];
    build_dims[0] = -1;  // the batch is dynamic in desc.dims, as TensorRT passes it
    d.desc.dims = make_dims(build_dims);
    std::vector<int64_t> min_dims = max[i];
    min_dims[0] = 1;
    d.min = make_dims(min_dims);
    v.push_back(d);
  }
  v.push_back(dynamic_desc(types[0], make_dims(max[0])));  // the output
  return v;
}

void check_optional_build_and_runtime(Checks& check, const Harness& h, nvinfer1::IPluginV3* p) {
  check.section("configurePlugin, getWorkspaceSize, onShapeChange, enqueue with optional inputs (no GPU work)");
  auto* build = build_of(p);
  const std::vector<int64_t> q = {2, 8, 1024, 64}, kv = {2, 2, 1024, 64};
  auto workspace = [&](const std::vector<DataType>& types, const std::vector<std::vector<int64_t>>& dims) {
    auto v = profile_io(types, dims);
    const auto n = static_cast<int32_t>(types.size());
    return build->getWorkspaceSize(v.data(), n, v.data() + n, 1);
  };
  const size_t errors = h.logger.error_count();
  const size_t plain = workspace({H, H, H}, {q, kv, kv});
  const size_t padding = workspace({H, H, H, BOOL}, {q, kv, kv, {2, 1024}});
  const size_t padding4 = workspace({H, H, H, BOOL}, {q, kv, kv, {2, 1, 1, 1024}});
  const size_t general = workspace({H, H, H, BOOL}, {q, kv, kv, {2, 8, 1024, 1024}});
  const size_t additive = workspace({H, H, H, H}, {q, kv, kv, {2, 8, 1024, 1024}});
  const size_t lengths = workspace({H, H, H, I64}, {q, kv, kv, {2}});
  const size_t both = workspace({H, H, H, I32, BOOL}, {q, kv, kv, {2}, {2, 1024}});
  check(h.logger.error_count() == errors && plain > 0, "workspace sized for 4 and 5 inputs without errors");
  check(padding > plain && padding4 == padding && both >= padding,
        "a bool key-padding mask adds the runner's key bits to the workspace ((B, Skv) and (B, 1, 1, Skv) alike)",
        std::to_string(plain) + " < " + std::to_string(padding) + ", " + std::to_string(padding4) + ", " + std::to_string(both));
  check(general >= padding, "a 4-D bool mask is sized for the key-padding case too (a dynamic broadcast dimension)",
        std::to_string(general) + " >= " + std::to_string(padding));
  // Not compared with `plain`: on an sm_90 GPU the plain call may take the Hopper path, whose workspace differs
  // from the portable path that a masked call can be routed to.
  check(additive > 0 && lengths > 0, "additive masks and key_lengths: a workspace is requested");
  expect_logged_all(check, h, workspace({H, H, H, BOOL}, {q, kv, kv, {2, 1000}}) == 0,
                    {"getWorkspaceSize", "input 3 (attn_mask)"}, "getWorkspaceSize rejects a mask inconsistent with the profile");

  {
    auto v = profile_io({H, H, H, BOOL}, {q, kv, kv, {2, 8, 1000, 1024}});
    expect_logged_all(check, h, build->configurePlugin(v.data(), 4, v.data() + 4, 1) != 0,
                      {"configurePlugin", "input 3 (attn_mask)", "dimension 2"},
                      "configurePlugin checks the mask against the profile's max shapes (before the device)");
    auto w = profile_io({H, H, H, DataType::kINT8}, {q, kv, kv, {2}});
    expect_logged_all(check, h, build->configurePlugin(w.data(), 4, w.data() + 4, 1) != 0,
                      {"configurePlugin", "input 3 has type int8"}, "configurePlugin checks the optional inputs' types");
    auto x = profile_io({H, H, H, I32}, {q, kv, kv, {3}});
    expect_logged_all(check, h, build->configurePlugin(x.data(), 4, x.data() + 4, 1) != 0,
                      {"configurePlugin", "input 3 (key_lengths)", "[3]"}, "configurePlugin checks key_lengths' shape");
  }

  auto* runtime = runtime_of(p);
  const auto qd = tensor_desc(H, make_dims({2, 8, 64, 64}));
  const auto kvd = tensor_desc(H, make_dims({2, 2, 48, 64}));
  const nvinfer1::PluginTensorDesc out[1] = {qd};
  const nvinfer1::PluginTensorDesc good[5] = {qd, kvd, kvd, tensor_desc(BOOL, make_dims({2, 48})),
                                              tensor_desc(I64, make_dims({2}))};
  check(runtime->onShapeChange(good, 4, out, 1) == 0 && runtime->onShapeChange(good, 5, out, 1) == 0,
        "onShapeChange accepts a key-padding mask and key_lengths");
  const nvinfer1::PluginTensorDesc bad_mask[4] = {qd, kvd, kvd, tensor_desc(BOOL, make_dims({2, 1, 64, 47}))};
  expect_logged_all(check, h, runtime->onShapeChange(bad_mask, 4, out, 1) != 0,
                    {"onShapeChange", "input 3 (attn_mask)", "dimension 3", "key length"}, "onShapeChange rejects a bad mask shape");
  expect_logged_all(check, h, runtime->enqueue(bad_mask, out, nullptr, nullptr, nullptr, nullptr) != 0,
                    {"enqueue: input 3 (attn_mask)"}, "enqueue rejects it too, before any GPU work");
  const nvinfer1::PluginTensorDesc bad_type[4] = {qd, kvd, kvd, tensor_desc(DataType::kFLOAT, make_dims({2, 48}))};
  expect_logged_all(check, h, runtime->onShapeChange(bad_type, 4, out, 1) != 0,
                    {"onShapeChange", "input 3 has type float32"}, "onShapeChange rejects an optional input of a wrong type");
  const nvinfer1::PluginTensorDesc bad_lengths[5] = {qd, kvd, kvd, tensor_desc(BOOL, make_dims({2, 48})),
                                                     tensor_desc(I32, make_dims({2, 1}))};
  expect_logged_all(check, h, runtime->onShapeChange(bad_lengths, 5, out, 1) != 0,
                    {"input 4 (key_lengths)", "[2, 1]"}, "onShapeChange rejects 2-D key_lengths");
  expect_logged_all(check, h, runtime->enqueue(bad_lengths, out, nullptr, nullptr, nullptr, nullptr) != 0,
                    {"enqueue: input 4 (key_lengths)"},
                    "enqueue (5 inputs, recorded by onShapeChange) rejects it before any GPU work");

  const auto q0 = tensor_desc(H, make_dims({2, 8, 0, 64}));
  const nvinfer1::PluginTensorDesc empty[5] = {q0, kvd, kvd, tensor_desc(I32, make_dims({2})),
                                               tensor_desc(H, make_dims({2, 8, 0, 48}))};
  const nvinfer1::PluginTensorDesc out0[1] = {q0};
  const size_t before = h.logger.error_count();
  check(runtime->onShapeChange(empty, 5, out0, 1) == 0 && runtime->enqueue(empty, out0, nullptr, nullptr, nullptr, nullptr) == 0 &&
            h.logger.error_count() == before,
        "empty query with key_lengths and an additive mask: enqueue succeeds without launching");
}

void check_serialization(Checks& check, const Harness& h, nvinfer1::IPluginV3* p) {
  check.section("getFieldsToSerialize -> createPlugin(kRUNTIME)");
  const nvinfer1::PluginFieldCollection* fc = runtime_of(p)->getFieldsToSerialize();
  check(fc && fc->nbFields == sage::schema::kNumAttrs, "every attribute serialized");
  const std::string text = fields_text(p);
  check(contains(text, "layout=BSNH\n") && contains(text, "is_causal=1\n") && contains(text, "scale=0.125\n") &&
            contains(text, "pv_dtype=fp16\n") && contains(text, "smooth_q=1\n") && contains(text, "kernel=auto\n") &&
            contains(text, "qk_granularity=per_thread\n"),
        "serialized values: the node's attributes plus defaults", text);
  check(!contains(text, "note_for_humans") && !contains(text, "plugin_version"), "unlisted node attributes dropped");
  bool strings_ok = fc != nullptr;
  for (int32_t i = 0; fc && i < fc->nbFields; ++i) {
    const auto& f = fc->fields[i];
    if (f.type == nvinfer1::PluginFieldType::kCHAR) {
      const char* s = static_cast<const char*>(f.data);
      strings_ok = strings_ok && f.length >= 1 && s[f.length - 1] == '\0' && std::strlen(s) + 1 == size_t(f.length);
    }
  }
  check(strings_ok, "strings serialized as the parser writes them (length counts the NUL)");

  PluginPtr restored = h.deserialize(p);
  std::string why;
  check(restored && same_serialized(p, restored.get(), why), "runtime-phase plugin serializes identically", why);
  check(restored && std::strcmp(build_of(p)->getTimingCacheID(), build_of(restored.get())->getTimingCacheID()) == 0,
        "timing-cache ID survives the round trip");

  // Omitted attributes and attributes spelled out at their defaults give the same plugin.
  std::vector<OnnxAttribute> explicit_defaults;
  for (const auto& spec : sage::schema::kAttrSpecs) {
    const A type = spec.type == sage::schema::AttrType::kInt     ? A::kInt
                   : spec.type == sage::schema::AttrType::kFloat ? A::kFloat
                                                                 : A::kString;
    explicit_defaults.push_back({spec.name, type, spec.default_text});
  }
  PluginPtr omitted = h.create_from_node({});
  PluginPtr spelled = h.create_from_node(explicit_defaults);
  PluginPtr no_collection(h.creator->createPlugin("sage_node", nullptr, TensorRTPhase::kBUILD));
  check(omitted && spelled && no_collection && same_serialized(omitted.get(), spelled.get(), why) &&
            same_serialized(omitted.get(), no_collection.get(), why),
        "defaults: omitted == spelled out == null collection", why);
}

void check_clone_and_attach(Checks& check, const Harness& h, PluginPtr original) {
  check.section("clone, attachToContext");
  FieldList before;
  before.add_all(*runtime_of(original.get())->getFieldsToSerialize());
  PluginPtr clone(original->clone());
  check(clone && clone.get() != original.get(), "clone returns a new object");
  if (!clone) return;
  original.reset();  // a clone must not depend on its source
  FieldList after;
  after.add_all(*runtime_of(clone.get())->getFieldsToSerialize());
  std::string why;
  check(same_fields(*before.get(), *after.get(), why), "clone serializes like its source (source deleted)", why);
  check(core_of(clone.get()) && build_of(clone.get()) && runtime_of(clone.get()), "clone has all capabilities");

  RecordingErrorRecorder recorder;
  FakeResourceContext context(&recorder);
  PluginPtr attached(runtime_of(clone.get())->attachToContext(&context));
  check(attached && attached.get() != clone.get(), "attachToContext returns a new plugin");
  if (!attached) return;
  check(same_serialized(clone.get(), attached.get(), why), "attached plugin has the same fields", why);

  const auto q = tensor_desc(DataType::kHALF, make_dims({2, 64, 8, 64}));
  const auto kv = tensor_desc(DataType::kHALF, make_dims({2, 64, 2, 32}));
  const nvinfer1::PluginTensorDesc bad[3] = {q, kv, kv}, out[1] = {q};
  runtime_of(attached.get())->onShapeChange(bad, 3, out, 1);
  check(recorder.getNbErrors() == 1 && contains(recorder.getErrorDesc(0), "head_dim") &&
            recorder.getErrorCode(0) == nvinfer1::ErrorCode::kINVALID_ARGUMENT,
        "attached plugin reports to the context's error recorder",
        recorder.getNbErrors() ? recorder.getErrorDesc(0) : "(no error recorded)");
  check(contains(h.logger.last_error(), "head_dim"), "... and to the logger");
  runtime_of(clone.get())->onShapeChange(bad, 3, out, 1);
  PluginPtr clone_of_attached(attached->clone());
  if (clone_of_attached) runtime_of(clone_of_attached.get())->onShapeChange(bad, 3, out, 1);
  check(clone_of_attached && recorder.getNbErrors() == 1,
        "unattached plugins (and clones of attached ones) do not use that recorder");
  attached.reset();
  check(clone && runtime_of(clone.get())->getFieldsToSerialize() != nullptr, "source survives deleting the attached clone");
}

void check_lenient_forms(Checks& check, const Harness& h, nvinfer1::IPluginV3* typical) {
  check.section("field forms beyond the parser's (users, Python API)");
  FieldList fields;
  fields.add_string("layout", "BSNH", /*with_nul=*/false);
  fields.add_int64("is_causal", 1);
  fields.add_float64("scale", 0.125);
  const char padded[] = "fp16\0\0\0";  // a longer buffer: the value ends at the first NUL
  fields.add_raw("pv_dtype", nvinfer1::PluginFieldType::kCHAR, padded, sizeof(padded), sizeof(padded));
  const int16_t one = 1;
  fields.add_raw("smooth_q", nvinfer1::PluginFieldType::kINT16, &one, sizeof(one), 1);
  PluginPtr p(h.creator->createPlugin("sage_node", fields.get(), TensorRTPhase::kBUILD));
  std::string why;
  check(p && same_serialized(p.get(), typical, why),
        "strings without NUL, kINT64/kINT16 ints, kFLOAT64 floats: same plugin as the parser's fields", why);
}

void check_bad_attributes(Checks& check, const Harness& h) {
  check.section("bad attributes: rejected in createPlugin, message names attribute and allowed values");
  expect_node_rejected(check, h, {{"layout", A::kString, "NCHW"}}, {"node 'bad_node'", "'layout'", "'NCHW'", "'BNSH', 'BSNH'"},
                       "layout NCHW");

  // Every attribute of the contract, from its own table entry.
  for (const auto& spec : sage::schema::kAttrSpecs) {
    const std::string name = spec.name, allowed = spec.allowed_text;
    const bool ranged = allowed.rfind(">= ", 0) == 0;
    if (spec.type == sage::schema::AttrType::kString) {
      std::string listed;
      for (const std::string& v : split(allowed, " | ")) listed += (listed.empty() ? "'" : ", '") + v + "'";
      expect_node_rejected(check, h, {{name, A::kString, "not_a_value"}}, {"'" + name + "'", listed},
                           name + " = 'not_a_value'");
    } else if (spec.type == sage::schema::AttrType::kInt && !ranged) {
      int64_t top = 0;
      std::string listed;
      for (const std::string& v : split(allowed, " | ")) {
        top = std::max<int64_t>(top, std::stoll(v));
        listed += (listed.empty() ? "" : ", ") + v;
      }
      expect_node_rejected(check, h, {{name, A::kInt, std::to_string(top + 1)}}, {"'" + name + "'", listed},
                           name + " = " + std::to_string(top + 1));
    } else if (ranged) {
      const double min = std::stod(allowed.substr(3));
      const A type = spec.type == sage::schema::AttrType::kInt ? A::kInt : A::kFloat;
      const std::string below = type == A::kInt ? std::to_string(static_cast<int64_t>(min) - 1) : "-1.5";
      expect_node_rejected(check, h, {{name, type, below}}, {"'" + name + "'", allowed}, name + " = " + below);
    }
  }
  expect_node_rejected(check, h, {{"scale", A::kFloat, "nan"}}, {"'scale'", "NaN"}, "scale = NaN");

  // Wrong field types: an ONNX attribute of the wrong kind reaches the creator as the wrong field type.
  expect_node_rejected(check, h, {{"layout", A::kInt, "1"}}, {"'layout'", "kINT32", "kCHAR"}, "layout as an INT attribute");
  expect_node_rejected(check, h, {{"is_causal", A::kFloat, "1"}}, {"'is_causal'", "kFLOAT32", "kINT32"},
                       "is_causal as a FLOAT attribute");
  expect_node_rejected(check, h, {{"scale", A::kString, "0.5"}}, {"'scale'", "kCHAR", "kFLOAT32"},
                       "scale as a STRING attribute");
  {
    FieldList f;
    f.add_int32("foo", 1);
    expect_rejected(check, h, f, TensorRTPhase::kBUILD, {"unknown field 'foo'", "layout", "kernel"}, "an unknown field");
  }
  {
    FieldList f;
    f.add_int32("is_causal", 1);
    f.add_int32("is_causal", 0);
    expect_rejected(check, h, f, TensorRTPhase::kBUILD, {"'is_causal'", "more than once"}, "a repeated field");
  }
  {
    FieldList f;
    f.add_int64("q_num_heads", int64_t{1} << 40);
    expect_rejected(check, h, f, TensorRTPhase::kBUILD, {"'q_num_heads'", "int32"}, "an int64 beyond int32");
  }
  {
    FieldList f;
    const int32_t two[2] = {1, 1};
    f.add_raw("is_causal", nvinfer1::PluginFieldType::kINT32, two, sizeof(two), 2);
    expect_rejected(check, h, f, TensorRTPhase::kBUILD, {"'is_causal'", "length 2"}, "an INTS attribute for an INT");
  }
  {
    FieldList f;
    f.add_null("layout", nvinfer1::PluginFieldType::kCHAR, 5);
    expect_rejected(check, h, f, TensorRTPhase::kBUILD, {"'layout'"}, "a string field with null data");
  }
  {
    FieldList f;
    f.add_string("pv_accum", "bf16");
    expect_rejected(check, h, f, TensorRTPhase::kRUNTIME, {"deserializing", "'pv_accum'", "'fp32', 'fp16'"},
                    "a bad value while deserializing");
  }
}

}  // namespace

int run_cpu_checks(const Harness& h) {
  Checks check;
  check_library(check, h);
  if (!h.creator) return 1;
  check_field_names(check, h);
  PluginPtr typical = h.create_from_node(kTypicalNode);
  const std::string creation_error = typical ? "" : h.logger.last_error();
  if (check(typical != nullptr, "plugin created from a typical node's parser fields", creation_error)) {
    check_identity_and_types(check, h, typical.get());
    check_output_shapes(check, h, typical.get());
    check_workspace_and_runtime(check, h, typical.get());
    check_serialization(check, h, typical.get());
    check_lenient_forms(check, h, typical.get());
    check_clone_and_attach(check, h, h.create_from_node(kTypicalNode));
  }
  PluginPtr masked = h.create_from_node({}, "mask_node");
  if (check(masked != nullptr, "plugin created for the optional-input checks")) {
    check_optional_types(check, h, masked.get());
    check_optional_formats(check, masked.get());
    check_optional_shapes(check, h, masked.get());
    check_optional_build_and_runtime(check, h, masked.get());
  }
  check_bad_attributes(check, h);
  std::printf("\n%d checks, %d failed\n", check.count(), check.failures());
  return check.failures();
}

}  // namespace sage_test
