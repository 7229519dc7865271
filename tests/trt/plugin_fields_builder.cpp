#include "plugin_fields_builder.h"

#include <cstring>
#include <limits>
#include <locale>
#include <sstream>

namespace sage_test {
namespace {

size_t element_bytes(nvinfer1::PluginFieldType type) {
  using T = nvinfer1::PluginFieldType;
  switch (type) {
    case T::kFLOAT16: case T::kBF16: case T::kINT16: return 2;
    case T::kFLOAT32: case T::kINT32: return 4;
    case T::kFLOAT64: case T::kINT64: return 8;
    case T::kDIMS: return sizeof(nvinfer1::Dims);
    default: return 1;  // kINT8, kCHAR, kUNKNOWN: length counts bytes
  }
}

template <class T>
T read(const void* data, int32_t index) {
  T v;
  std::memcpy(&v, static_cast<const unsigned char*>(data) + index * sizeof(T), sizeof(T));
  return v;
}

}  // namespace

void FieldList::add_raw(const std::string& name, nvinfer1::PluginFieldType type, const void* data, size_t bytes,
                        int32_t length) {
  names_.push_back(name);
  const auto* p = static_cast<const unsigned char*>(data);
  data_.emplace_back(p, p + bytes);
  fields_.emplace_back(names_.back().c_str(), data_.back().data(), type, length);
}

void FieldList::add_string(const std::string& name, const std::string& s, bool with_nul) {
  const size_t n = s.size() + (with_nul ? 1 : 0);
  add_raw(name, nvinfer1::PluginFieldType::kCHAR, s.c_str(), n, static_cast<int32_t>(n));
}

void FieldList::add_null(const std::string& name, nvinfer1::PluginFieldType type, int32_t length) {
  names_.push_back(name);
  fields_.emplace_back(names_.back().c_str(), nullptr, type, length);
}

void FieldList::add_all(const nvinfer1::PluginFieldCollection& fc) {
  for (int32_t i = 0; i < fc.nbFields; ++i) {
    const nvinfer1::PluginField& f = fc.fields[i];
    if (f.data == nullptr) {
      add_null(f.name, f.type, f.length);
    } else {
      add_raw(f.name, f.type, f.data, element_bytes(f.type) * static_cast<size_t>(f.length), f.length);
    }
  }
}

const nvinfer1::PluginFieldCollection* FieldList::get() {
  fc_.nbFields = static_cast<int32_t>(fields_.size());
  fc_.fields = fields_.data();
  return &fc_;
}

std::string parse_onnx_attribute(const std::string& arg, OnnxAttribute& out) {
  const size_t colon = arg.find(':'), eq = arg.find('=');
  if (colon == std::string::npos || eq == std::string::npos || eq < colon) {
    return "attribute '" + arg + "' must look like int:name=value, float:name=value or string:name=value";
  }
  const std::string type = arg.substr(0, colon);
  out.name = arg.substr(colon + 1, eq - colon - 1);
  out.text = arg.substr(eq + 1);
  if (type == "int") {
    out.type = OnnxAttribute::Type::kInt;
  } else if (type == "float") {
    out.type = OnnxAttribute::Type::kFloat;
  } else if (type == "string") {
    out.type = OnnxAttribute::Type::kString;
  } else {
    return "attribute type '" + type + "' must be int, float or string";
  }
  return {};
}

void add_parser_fields(FieldList& out, const nvinfer1::PluginFieldCollection& creator_fields,
                       const std::vector<OnnxAttribute>& node_attributes) {
  for (int32_t i = 0; i < creator_fields.nbFields; ++i) {
    const std::string name = creator_fields.fields[i].name;
    for (const OnnxAttribute& a : node_attributes) {
      if (a.name != name) continue;
      std::istringstream in(a.text);
      in.imbue(std::locale::classic());
      switch (a.type) {
        case OnnxAttribute::Type::kInt: {
          int64_t v = 0;
          in >> v;
          out.add_int32(name, static_cast<int32_t>(v));  // the parser reads INT as int32: narrowed
          break;
        }
        case OnnxAttribute::Type::kFloat: {
          float v = 0.f;
          if (a.text == "nan") {
            v = std::numeric_limits<float>::quiet_NaN();
          } else {
            in >> v;
          }
          out.add_float32(name, v);
          break;
        }
        case OnnxAttribute::Type::kString: out.add_string(name, a.text, true); break;
      }
      break;  // ONNX attribute names are unique within a node
    }
  }
}

bool same_fields(const nvinfer1::PluginFieldCollection& a, const nvinfer1::PluginFieldCollection& b,
                 std::string& why) {
  if (a.nbFields != b.nbFields) {
    why = "field counts differ: " + std::to_string(a.nbFields) + " vs " + std::to_string(b.nbFields);
    return false;
  }
  for (int32_t i = 0; i < a.nbFields; ++i) {
    const nvinfer1::PluginField &x = a.fields[i], &y = b.fields[i];
    const std::string name = x.name ? x.name : "(null)";
    if (!x.name || !y.name || std::strcmp(x.name, y.name) != 0) {
      why = "field #" + std::to_string(i) + " names differ: " + name + " vs " + (y.name ? y.name : "(null)");
      return false;
    }
    if (x.type != y.type || x.length != y.length) {
      why = "field '" + name + "' type/length differ";
      return false;
    }
    const size_t bytes = element_bytes(x.type) * static_cast<size_t>(x.length);
    if ((x.data == nullptr) != (y.data == nullptr) || (x.data && std::memcmp(x.data, y.data, bytes) != 0)) {
      why = "field '" + name + "' values differ";
      return false;
    }
  }
  return true;
}

std::string describe_fields(const nvinfer1::PluginFieldCollection& fc) {
  std::ostringstream out;
  out.imbue(std::locale::classic());
  out.precision(std::numeric_limits<float>::max_digits10);
  using T = nvinfer1::PluginFieldType;
  for (int32_t i = 0; i < fc.nbFields; ++i) {
    const nvinfer1::PluginField& f = fc.fields[i];
    out << f.name << '=';
    if (f.data == nullptr) {
      out << "(null)";
    } else if (f.type == T::kINT32 && f.length == 1) {
      out << read<int32_t>(f.data, 0);
    } else if (f.type == T::kFLOAT32 && f.length == 1) {
      out << read<float>(f.data, 0);
    } else if (f.type == T::kCHAR) {
      const char* s = static_cast<const char*>(f.data);
      const bool has_nul = f.length > 0 && s[f.length - 1] == '\0';
      out << std::string(s, has_nul ? f.length - 1 : f.length) << (has_nul ? "" : " (no NUL)");
    } else {
      out << "(type " << static_cast<int>(f.type) << ", length " << f.length << ")";
    }
    out << '\n';
  }
  return out.str();
}

}  // namespace sage_test
