#include "plugin_fields.h"

#include <cstring>
#include <limits>
#include <locale>
#include <sstream>

namespace sage::trt {
namespace {

using nvinfer1::PluginField;
using nvinfer1::PluginFieldType;
using schema::AttrType;
using schema::kAttrSpecs;
using schema::kNumAttrs;

int find_spec(const char* name) {
  for (int i = 0; i < kNumAttrs; ++i) {
    if (std::strcmp(kAttrSpecs[i].name, name) == 0) return i;
  }
  return -1;
}

const char* field_type_name(PluginFieldType t) {
  switch (t) {
    case PluginFieldType::kFLOAT16: return "kFLOAT16";
    case PluginFieldType::kFLOAT32: return "kFLOAT32";
    case PluginFieldType::kFLOAT64: return "kFLOAT64";
    case PluginFieldType::kINT8: return "kINT8";
    case PluginFieldType::kINT16: return "kINT16";
    case PluginFieldType::kINT32: return "kINT32";
    case PluginFieldType::kCHAR: return "kCHAR";
    case PluginFieldType::kDIMS: return "kDIMS";
    case PluginFieldType::kUNKNOWN: return "kUNKNOWN";
    case PluginFieldType::kBF16: return "kBF16";
    case PluginFieldType::kINT64: return "kINT64";
    default: return "an unsupported field type";
  }
}

std::string field_names_list() {
  std::string s;
  for (int i = 0; i < kNumAttrs; ++i) s += (i ? ", " : "") + std::string(kAttrSpecs[i].name);
  return s;
}

std::string type_error(const schema::AttrSpec& spec, const PluginField& f) {
  static constexpr const char* kExpected[] = {
      "an integer: one ONNX INT attribute, i.e. a kINT32 field of length 1",
      "a float: one ONNX FLOAT attribute, i.e. a kFLOAT32 field of length 1",
      "a string: one ONNX STRING attribute, i.e. a kCHAR field",
  };
  return "field '" + std::string(spec.name) + "' is " + field_type_name(f.type) + " of length " +
         std::to_string(f.length) + "; attribute '" + spec.name + "' is " +
         kExpected[static_cast<int>(spec.type)] + " (allowed: " + spec.allowed_text + ")";
}

template <class T>
T read_scalar(const void* data) {
  T v;
  std::memcpy(&v, data, sizeof(T));  // field data carries no alignment promise
  return v;
}

std::string decode_int(const schema::AttrSpec& spec, const PluginField& f, AttrValue& out) {
  if (f.length != 1 || f.data == nullptr) return type_error(spec, f);
  int64_t v = 0;
  switch (f.type) {
    case PluginFieldType::kINT32: v = read_scalar<int32_t>(f.data); break;
    case PluginFieldType::kINT64: v = read_scalar<int64_t>(f.data); break;
    case PluginFieldType::kINT16: v = read_scalar<int16_t>(f.data); break;
    case PluginFieldType::kINT8: v = read_scalar<int8_t>(f.data); break;
    default: return type_error(spec, f);
  }
  // Serialized fields are int32 (what the parser produces), so a wider value could not round-trip.
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
    return "attribute '" + std::string(spec.name) + "' is " + std::to_string(v) +
           "; it must fit in int32 (allowed: " + spec.allowed_text + ")";
  }
  out.i = v;
  return {};
}

std::string decode_float(const schema::AttrSpec& spec, const PluginField& f, AttrValue& out) {
  if (f.length != 1 || f.data == nullptr) return type_error(spec, f);
  switch (f.type) {
    case PluginFieldType::kFLOAT32: out.f = read_scalar<float>(f.data); return {};
    case PluginFieldType::kFLOAT64: out.f = static_cast<float>(read_scalar<double>(f.data)); return {};
    default: return type_error(spec, f);
  }
}

std::string decode_string(const schema::AttrSpec& spec, const PluginField& f, AttrValue& out) {
  if (f.type != PluginFieldType::kCHAR || f.length < 0 || (f.length > 0 && f.data == nullptr)) {
    return type_error(spec, f);
  }
  // The parser's length counts the trailing NUL; a user's may not. Either way the value ends at the first
  // NUL or at `length`, whichever comes first.
  const char* chars = static_cast<const char*>(f.data);
  size_t n = 0;
  while (n < static_cast<size_t>(f.length) && chars[n] != '\0') ++n;
  out.s.assign(chars, n);
  return {};
}

std::string decode_one(const schema::AttrSpec& spec, const PluginField& f, AttrValue& out) {
  switch (spec.type) {
    case AttrType::kInt: return decode_int(spec, f, out);
    case AttrType::kFloat: return decode_float(spec, f, out);
    case AttrType::kString: return decode_string(spec, f, out);
  }
  return "field '" + std::string(spec.name) + "' has an attribute type the plugin does not know";
}

// The getter the generated parse_attributes reads through. Every attribute is present (values are complete).
struct ValuesGetter {
  const AttrValues& values;

  bool get_int(const char* name, int64_t& out) const {
    const int i = find_spec(name);
    if (i < 0 || kAttrSpecs[i].type != AttrType::kInt) return false;
    out = values[i].i;
    return true;
  }
  bool get_float(const char* name, float& out) const {
    const int i = find_spec(name);
    if (i < 0 || kAttrSpecs[i].type != AttrType::kFloat) return false;
    out = values[i].f;
    return true;
  }
  bool get_string(const char* name, std::string& out) const {
    const int i = find_spec(name);
    if (i < 0 || kAttrSpecs[i].type != AttrType::kString) return false;
    out = values[i].s;
    return true;
  }
};

std::istringstream classic_stream(const char* text) {
  std::istringstream in(text);
  in.imbue(std::locale::classic());  // defaults are written with '.', whatever the process locale says
  return in;
}

}  // namespace

AttrValues default_attr_values() {
  AttrValues values;
  for (int i = 0; i < kNumAttrs; ++i) {
    const schema::AttrSpec& spec = kAttrSpecs[i];
    switch (spec.type) {
      case AttrType::kInt: classic_stream(spec.default_text) >> values[i].i; break;
      case AttrType::kFloat: classic_stream(spec.default_text) >> values[i].f; break;
      case AttrType::kString: values[i].s = spec.default_text; break;
    }
  }
  return values;
}

std::string parse_values(const AttrValues& values, schema::Attributes& attrs) {
  ValuesGetter getter{values};
  return schema::parse_attributes(getter, attrs);
}

std::string decode_fields(const nvinfer1::PluginFieldCollection* fc, AttrValues& values, schema::Attributes& attrs) {
  values = default_attr_values();
  const int32_t count = fc ? fc->nbFields : 0;
  if (count < 0 || (count > 0 && fc->fields == nullptr)) {
    return "the plugin field collection is malformed (" + std::to_string(count) + " fields, field array " +
           (fc && fc->fields ? "set" : "null") + ")";
  }
  std::array<bool, kNumAttrs> seen{};
  for (int32_t n = 0; n < count; ++n) {
    const PluginField& f = fc->fields[n];
    if (f.name == nullptr) return "plugin field #" + std::to_string(n) + " has no name";
    const int i = find_spec(f.name);
    if (i < 0) return "unknown field '" + std::string(f.name) + "'; the SageAttention fields are: " + field_names_list();
    if (seen[i]) return "field '" + std::string(f.name) + "' is given more than once";
    seen[i] = true;
    std::string err = decode_one(kAttrSpecs[i], f, values[i]);
    if (!err.empty()) return err;
  }
  return parse_values(values, attrs);
}

std::vector<PluginField> field_descriptions() {
  std::vector<PluginField> fields;
  fields.reserve(kNumAttrs);
  for (const schema::AttrSpec& spec : kAttrSpecs) {
    switch (spec.type) {
      case AttrType::kInt: fields.emplace_back(spec.name, nullptr, PluginFieldType::kINT32, 1); break;
      case AttrType::kFloat: fields.emplace_back(spec.name, nullptr, PluginFieldType::kFLOAT32, 1); break;
      case AttrType::kString: fields.emplace_back(spec.name, nullptr, PluginFieldType::kCHAR, 1); break;
    }
  }
  return fields;
}

std::string attributes_text(const AttrValues& values) {
  std::ostringstream out;
  out.imbue(std::locale::classic());
  out.precision(std::numeric_limits<float>::max_digits10);
  for (int i = 0; i < kNumAttrs; ++i) {
    out << (i ? ";" : "") << kAttrSpecs[i].name << '=';
    switch (kAttrSpecs[i].type) {
      case AttrType::kInt: out << values[i].i; break;
      case AttrType::kFloat: out << values[i].f; break;
      case AttrType::kString: out << values[i].s; break;
    }
  }
  return out.str();
}

const nvinfer1::PluginFieldCollection* FieldEncoder::encode(const AttrValues& values) {
  fields_.clear();
  for (int i = 0; i < kNumAttrs; ++i) {
    const schema::AttrSpec& spec = kAttrSpecs[i];
    switch (spec.type) {
      case AttrType::kInt:
        ints_[i] = static_cast<int32_t>(values[i].i);  // decode_fields keeps ints within int32
        fields_.emplace_back(spec.name, &ints_[i], PluginFieldType::kINT32, 1);
        break;
      case AttrType::kFloat:
        floats_[i] = values[i].f;
        fields_.emplace_back(spec.name, &floats_[i], PluginFieldType::kFLOAT32, 1);
        break;
      case AttrType::kString:
        // Written as the ONNX parser writes strings: the characters plus their NUL, counted in `length`.
        strings_[i] = values[i].s;
        fields_.emplace_back(spec.name, strings_[i].c_str(), PluginFieldType::kCHAR,
                             static_cast<int32_t>(strings_[i].size() + 1));
        break;
    }
  }
  collection_.nbFields = static_cast<int32_t>(fields_.size());
  collection_.fields = fields_.data();
  return &collection_;
}

}  // namespace sage::trt
