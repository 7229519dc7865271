// sage_trt_plugin_test: drives libsage_attention_trt.so without TensorRT (docs/TENSORRT.md, "Tests").
//   sage_trt_plugin_test LIB cpu                      all CPU checks; exit status = failed checks
//   sage_trt_plugin_test LIB fields                   the creator's fields, "name type" per line
//   sage_trt_plugin_test LIB create ATTR...           parser-style createPlugin + serialize round trip;
//                                                     prints the serialized fields, or "error: ..." (exit 2)
//   sage_trt_plugin_test LIB run --dtype T --query d,d,.. --key .. --value .. --dir DIR
//                            [--attn-mask TYPE:d,d,..] [--key-lengths TYPE:d] ATTR...
//                                                     GPU life cycle; exit 77 ("SKIP: ...") without a GPU.
//                                                     The optional inputs follow value in the order given.
// ATTR is int:name=value, float:name=value or string:name=value: an ONNX attribute and its type.
#include <cstdio>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "driver.h"

namespace {

using namespace sage_test;

int usage() {
  std::fprintf(stderr,
               "usage: sage_trt_plugin_test LIB (cpu | fields | create ATTR... |\n"
               "       run --dtype float32|float16|bfloat16 --query DIMS --key DIMS --value DIMS --dir DIR\n"
               "           [--attn-mask TYPE:DIMS] [--key-lengths TYPE:DIMS] ATTR...)\n"
               "  ATTR: int:name=value | float:name=value | string:name=value\n"
               "  TYPE: bool | float32 | float16 | bfloat16 | int32 | int64 (DIR/attn_mask.bin, DIR/key_lengths.bin)\n");
  return 64;
}

std::vector<int64_t> parse_dims(const std::string& text) {
  std::vector<int64_t> dims;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) dims.push_back(std::stoll(part));
  return dims;
}

bool parse_type(const std::string& name, nvinfer1::DataType& out) {
  if (name == "float32") out = nvinfer1::DataType::kFLOAT;
  else if (name == "float16") out = nvinfer1::DataType::kHALF;
  else if (name == "bfloat16") out = nvinfer1::DataType::kBF16;
  else if (name == "bool") out = nvinfer1::DataType::kBOOL;
  else if (name == "int32") out = nvinfer1::DataType::kINT32;
  else if (name == "int64") out = nvinfer1::DataType::kINT64;
  else return false;
  return true;
}

// "TYPE:DIMS" of an optional input.
bool parse_extra(const std::string& name, const std::string& text, ExtraInput& out) {
  const size_t colon = text.find(':');
  if (colon == std::string::npos || !parse_type(text.substr(0, colon), out.type)) return false;
  out.name = name;
  out.dims = parse_dims(text.substr(colon + 1));
  return !out.dims.empty();
}

bool parse_attrs(const std::vector<std::string>& args, std::vector<OnnxAttribute>& out) {
  for (const std::string& a : args) {
    OnnxAttribute attr;
    const std::string err = parse_onnx_attribute(a, attr);
    if (!err.empty()) {
      std::fprintf(stderr, "%s\n", err.c_str());
      return false;
    }
    out.push_back(attr);
  }
  return true;
}

const char* field_type_name(nvinfer1::PluginFieldType t) {
  switch (t) {
    case nvinfer1::PluginFieldType::kINT32: return "kINT32";
    case nvinfer1::PluginFieldType::kFLOAT32: return "kFLOAT32";
    case nvinfer1::PluginFieldType::kCHAR: return "kCHAR";
    default: return "other";
  }
}

int cmd_fields(const Harness& h) {
  const nvinfer1::PluginFieldCollection* fc = h.creator->getFieldNames();
  for (int32_t i = 0; i < fc->nbFields; ++i) std::printf("%s %s\n", fc->fields[i].name, field_type_name(fc->fields[i].type));
  return 0;
}

int cmd_create(const Harness& h, const std::vector<std::string>& args) {
  std::vector<OnnxAttribute> attrs;
  if (!parse_attrs(args, attrs)) return usage();
  PluginPtr p = h.create_from_node(attrs);
  PluginPtr restored = p ? h.deserialize(p.get()) : nullptr;
  if (!p || !restored) {
    std::printf("error: %s\n", h.logger.last_error().c_str());
    return 2;
  }
  FieldList built, runtime;
  built.add_all(*runtime_of(p.get())->getFieldsToSerialize());
  runtime.add_all(*runtime_of(restored.get())->getFieldsToSerialize());
  std::string why;
  if (!same_fields(*built.get(), *runtime.get(), why)) {
    std::printf("error: serialize round trip changed the fields: %s\n", why.c_str());
    return 1;
  }
  std::printf("%s", describe_fields(*built.get()).c_str());
  return 0;
}

int cmd_run(const Harness& h, const std::vector<std::string>& args) {
  GpuRunOptions o;
  std::vector<std::string> attr_args;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has_value = i + 1 < args.size();
    if (a == "--dtype" && has_value) {
      if (!parse_type(args[++i], o.dtype) || !(o.dtype == nvinfer1::DataType::kFLOAT || o.dtype == nvinfer1::DataType::kHALF ||
                                               o.dtype == nvinfer1::DataType::kBF16)) {
        return usage();
      }
    } else if ((a == "--attn-mask" || a == "--key-lengths") && has_value) {
      ExtraInput extra;
      if (!parse_extra(a == "--attn-mask" ? "attn_mask" : "key_lengths", args[++i], extra)) return usage();
      o.extras.push_back(extra);
    } else if (a == "--query" && has_value) {
      o.query = parse_dims(args[++i]);
    } else if (a == "--key" && has_value) {
      o.key = parse_dims(args[++i]);
    } else if (a == "--value" && has_value) {
      o.value = parse_dims(args[++i]);
    } else if (a == "--dir" && has_value) {
      o.dir = args[++i];
    } else {
      attr_args.push_back(a);
    }
  }
  if (o.query.empty() || o.key.empty() || o.value.empty() || o.dir.empty() || !parse_attrs(attr_args, o.attrs)) {
    return usage();
  }
  return run_on_gpu(h, o);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  try {
    PluginLibrary library(argv[1]);
    CapturingLogger logger;
    FakeLoggerFinder finder(logger);
    library.set_logger_finder(&finder);  // as IPluginRegistry::loadLibrary does
    const Harness h{library, logger, library.find_creator("SageAttention", "1", "")};
    const std::string cmd = argv[2];
    const std::vector<std::string> args(argv + 3, argv + argc);
    if (cmd == "cpu") return run_cpu_checks(h) == 0 ? 0 : 1;
    if (!h.creator) {
      std::printf("error: no V3One creator (SageAttention, 1, \"\") in %s\n", argv[1]);
      return 1;
    }
    if (cmd == "fields") return cmd_fields(h);
    if (cmd == "create") return cmd_create(h, args);
    if (cmd == "run") return cmd_run(h, args);
    return usage();
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
}
