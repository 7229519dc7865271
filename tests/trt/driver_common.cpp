#include "driver.h"

namespace sage_test {

PluginPtr Harness::create_from_node(const std::vector<OnnxAttribute>& attrs, const char* name) const {
  FieldList fields;
  add_parser_fields(fields, *creator->getFieldNames(), attrs);
  return PluginPtr(creator->createPlugin(name, fields.get(), nvinfer1::TensorRTPhase::kBUILD));
}

PluginPtr Harness::deserialize(nvinfer1::IPluginV3* p, const char* name) const {
  const nvinfer1::PluginFieldCollection* fc = runtime_of(p)->getFieldsToSerialize();
  if (!fc) return nullptr;
  FieldList plan;
  plan.add_all(*fc);
  return PluginPtr(creator->createPlugin(name, plan.get(), nvinfer1::TensorRTPhase::kRUNTIME));
}

nvinfer1::Dims make_dims(const std::vector<int64_t>& extents) {
  nvinfer1::Dims d{};
  d.nbDims = static_cast<int32_t>(extents.size());
  for (size_t i = 0; i < extents.size(); ++i) d.d[i] = extents[i];
  return d;
}

nvinfer1::DynamicPluginTensorDesc dynamic_desc(nvinfer1::DataType type, const nvinfer1::Dims& dims,
                                               nvinfer1::TensorFormat format) {
  nvinfer1::DynamicPluginTensorDesc d{};
  d.desc.dims = dims;
  d.desc.type = type;
  d.desc.format = format;
  d.desc.scale = -1.f;
  d.min = d.opt = d.max = dims;
  return d;
}

nvinfer1::PluginTensorDesc tensor_desc(nvinfer1::DataType type, const nvinfer1::Dims& dims) {
  nvinfer1::PluginTensorDesc d{};
  d.dims = dims;
  d.type = type;
  d.format = nvinfer1::TensorFormat::kLINEAR;
  d.scale = -1.f;
  return d;
}

}  // namespace sage_test
