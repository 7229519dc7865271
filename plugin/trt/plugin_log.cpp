#include "plugin_log.h"

#include <atomic>
#include <cstdio>

namespace sage::trt {
namespace {

// TensorRT may set the finder while another thread logs; an atomic pointer is enough because the finder
// object itself outlives the library.
std::atomic<nvinfer1::ILoggerFinder*> g_logger_finder{nullptr};

void emit(nvinfer1::ILogger::Severity severity, const std::string& message) noexcept {
  // findLogger must run on the thread of the plugin call, so it is asked every time, never cached.
  nvinfer1::ILoggerFinder* finder = g_logger_finder.load(std::memory_order_acquire);
  nvinfer1::ILogger* logger = finder ? finder->findLogger() : nullptr;
  if (logger) {
    logger->log(severity, message.c_str());
  } else {
    const char* level = severity == nvinfer1::ILogger::Severity::kWARNING ? "WARNING" : "ERROR";
    std::fprintf(stderr, "[SageAttention TensorRT plugin] %s: %s\n", level, message.c_str());
  }
}

}  // namespace

void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept {
  g_logger_finder.store(finder, std::memory_order_release);
}

void report_error(nvinfer1::IErrorRecorder* recorder, nvinfer1::ErrorCode code, const std::string& message) noexcept {
  try {
    emit(nvinfer1::ILogger::Severity::kERROR, message);
    if (recorder) recorder->reportError(code, message.c_str());
  } catch (...) {
    // Nothing sensible is left to do when reporting itself throws (out of memory); stay noexcept.
  }
}

void log_warning(const std::string& message) noexcept {
  try {
    emit(nvinfer1::ILogger::Severity::kWARNING, message);
  } catch (...) {
  }
}

}  // namespace sage::trt
