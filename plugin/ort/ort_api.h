// Every ORT translation unit includes the C++ API through this header, so all agree on manual API init:
// the library never links libonnxruntime; it uses the OrtApi table negotiated in RegisterCustomOps.
#pragma once
#define ORT_API_MANUAL_INIT
#include "onnxruntime_cxx_api.h"
#undef ORT_API_MANUAL_INIT

namespace sage::ort {

// The API version agreed with the loading runtime (set once in RegisterCustomOps).
int negotiated_api_version();
const OrtApi& api();

}  // namespace sage::ort
