// Where the plugin's errors go. TensorRT hands a plugin library an ILoggerFinder (setLoggerFinder) and an
// attached plugin an IErrorRecorder (attachToContext); both are used only through their virtual methods, so
// the library needs no libnvinfer symbol. With neither available (a bare dlopen, as in the tests) messages
// go to stderr so that no failure is silent.
#pragma once
#include <NvInferRuntime.h>

#include <string>

namespace sage::trt {

void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept;

// Logs `message` as an error and records it on `recorder` (may be null) with `code`.
void report_error(nvinfer1::IErrorRecorder* recorder, nvinfer1::ErrorCode code, const std::string& message) noexcept;

void log_warning(const std::string& message) noexcept;

}  // namespace sage::trt
