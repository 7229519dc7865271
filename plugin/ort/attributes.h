// Reads the op's attributes from an OrtKernelInfo through the generated contract parser.
#pragma once
#include <string>

#include "op_schema.gen.h"
#include "ort_api.h"

namespace sage::ort {

// Returns "" and fills `out`, or a message naming the attribute and its allowed values.
std::string read_attributes(const OrtKernelInfo* info, schema::Attributes& out);

std::string node_name(const OrtKernelInfo* info);

}  // namespace sage::ort
