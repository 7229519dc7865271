// The attribute <-> PluginField codec. It walks the contract's table (schema::kAttrSpecs) and hands
// validation to the generated schema::parse_attributes, so no attribute name is spelled in the plugin and a
// new attribute in sage_attention.toml becomes a plugin field by rebuilding.
#pragma once
#include <NvInferRuntime.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "op_schema.gen.h"

namespace sage::trt {

// One attribute's value; the member that counts follows kAttrSpecs[i].type.
struct AttrValue {
  int64_t i = 0;
  float f = 0.f;
  std::string s;
};

// Every attribute of the contract in kAttrSpecs order. Always complete: absent fields hold the default, so
// serializing it is self-describing and independent of later changes to defaults.
using AttrValues = std::array<AttrValue, schema::kNumAttrs>;

AttrValues default_attr_values();

// Reads a field collection as it arrives from the TensorRT ONNX parser (INT narrowed to kINT32, FLOAT as
// kFLOAT32, STRING as kCHAR whose length counts the trailing NUL), from a user (kINT64/kINT16/kINT8,
// kFLOAT64, strings without NUL) or from getFieldsToSerialize. Absent fields keep their defaults; unknown
// or repeated fields are rejected. Returns "" or a message naming the attribute and what it allows.
std::string decode_fields(const nvinfer1::PluginFieldCollection* fc, AttrValues& values, schema::Attributes& attrs);

// Validates complete values through the generated parser.
std::string parse_values(const AttrValues& values, schema::Attributes& attrs);

// IPluginCreatorV3One::getFieldNames: every attribute with the field type the ONNX parser produces for it.
std::vector<nvinfer1::PluginField> field_descriptions();

// "name=value;..." over every attribute: the timing-cache ID and the metadata string of the plugin.
std::string attributes_text(const AttrValues& values);

// Owns the fields returned by getFieldsToSerialize. TensorRT copies them before the next call, so the
// storage is rebuilt on every encode() and a copy of an encoder starts empty (never points at another
// object's storage).
class FieldEncoder {
 public:
  FieldEncoder() = default;
  FieldEncoder(const FieldEncoder&) {}
  FieldEncoder& operator=(const FieldEncoder&) { return *this; }

  const nvinfer1::PluginFieldCollection* encode(const AttrValues& values);

 private:
  std::array<int32_t, schema::kNumAttrs> ints_{};
  std::array<float, schema::kNumAttrs> floats_{};
  std::array<std::string, schema::kNumAttrs> strings_{};
  std::vector<nvinfer1::PluginField> fields_;
  nvinfer1::PluginFieldCollection collection_{};
};

}  // namespace sage::trt
