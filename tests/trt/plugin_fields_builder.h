// Builds PluginFieldCollections for the tests: raw fields of any type (to feed the creator odd input), deep
// copies of a plugin's serialized fields (as TensorRT stores them in a plan), and the collection the
// TensorRT ONNX parser builds from a node's attributes.
#pragma once
#include <NvInferRuntime.h>

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace sage_test {

// A PluginFieldCollection that owns its names and data (deque: stable addresses while it grows).
class FieldList {
 public:
  FieldList() = default;
  FieldList(const FieldList&) = delete;
  FieldList& operator=(const FieldList&) = delete;

  void add_raw(const std::string& name, nvinfer1::PluginFieldType type, const void* data, size_t bytes,
               int32_t length);
  void add_int32(const std::string& name, int32_t v) { add_raw(name, nvinfer1::PluginFieldType::kINT32, &v, 4, 1); }
  void add_int64(const std::string& name, int64_t v) { add_raw(name, nvinfer1::PluginFieldType::kINT64, &v, 8, 1); }
  void add_float32(const std::string& name, float v) { add_raw(name, nvinfer1::PluginFieldType::kFLOAT32, &v, 4, 1); }
  void add_float64(const std::string& name, double v) {
    add_raw(name, nvinfer1::PluginFieldType::kFLOAT64, &v, 8, 1);
  }
  // with_nul: length counts a trailing NUL, as the ONNX parser writes strings.
  void add_string(const std::string& name, const std::string& s, bool with_nul = true);
  // A field with a null data pointer (what getFieldNames returns; invalid input for createPlugin).
  void add_null(const std::string& name, nvinfer1::PluginFieldType type, int32_t length);
  // Deep copy of every field of `fc`.
  void add_all(const nvinfer1::PluginFieldCollection& fc);

  const nvinfer1::PluginFieldCollection* get();

 private:
  std::deque<std::string> names_;
  std::deque<std::vector<unsigned char>> data_;
  std::vector<nvinfer1::PluginField> fields_;
  nvinfer1::PluginFieldCollection fc_{};
};

// One ONNX node attribute as the parser sees it: its AttributeProto type and its value.
struct OnnxAttribute {
  enum class Type { kInt, kFloat, kString };
  std::string name;
  Type type = Type::kInt;
  std::string text;  // the value, written out ("1", "0.125", "BSNH")
};

// Parses "int:name=value", "float:name=value" or "string:name=value"; "" on success, else why not.
std::string parse_onnx_attribute(const std::string& arg, OnnxAttribute& out);

// The fields the TensorRT ONNX parser passes to createPlugin for a node (onnx-tensorrt, plugin fallback
// importer): it walks the creator's getFieldNames() in order and, for each name the node carries, converts
// the attribute by its ONNX type: INT -> kINT32 (int64 narrowed), FLOAT -> kFLOAT32, STRING -> kCHAR
// with length = size + 1. Node attributes the creator does not list are dropped silently; listed ones the
// node lacks are skipped (the parser warns), so the creator's defaults apply.
void add_parser_fields(FieldList& out, const nvinfer1::PluginFieldCollection& creator_fields,
                       const std::vector<OnnxAttribute>& node_attributes);

// Field-by-field equality (name, type, length, bytes); `why` says the first difference.
bool same_fields(const nvinfer1::PluginFieldCollection& a, const nvinfer1::PluginFieldCollection& b,
                 std::string& why);

// "name=value" per field, one a line (ints, floats, strings); what the `create` command prints.
std::string describe_fields(const nvinfer1::PluginFieldCollection& fc);

}  // namespace sage_test
