// Test-only stand-ins for the objects TensorRT hands a plugin: an expression builder, a logger finder, an
// error recorder and a resource context. TensorRT gives IExprBuilder/IDimensionExpr no public constructor;
// their inline methods forward to the protected `mImpl` (apiv::VExprBuilder / VDimensionExpr), so a
// subclass that points mImpl at a small constant-folding implementation is a working builder. This is for
// the test driver only: the headers warn against inheriting from these classes in real code.
#pragma once
#include <NvInferRuntime.h>

#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sage_test {

class FakeDimExpr final : public nvinfer1::IDimensionExpr {
 public:
  FakeDimExpr(bool constant, int64_t value, bool size_tensor = false) : impl_(constant, value, size_tensor) {
    mImpl = &impl_;
  }
  ~FakeDimExpr() noexcept override = default;

 private:
  struct Impl final : nvinfer1::apiv::VDimensionExpr {
    Impl(bool c, int64_t v, bool s) : constant(c), value(v), size_tensor(s) {}
    bool isConstant() const override { return constant; }
    int64_t getConstantValue() const override { return constant ? value : std::numeric_limits<int64_t>::min(); }
    bool isSizeTensor() const override { return size_tensor; }
    bool constant;
    int64_t value;
    bool size_tensor;
  };
  Impl impl_;
};

// Owns every expression it makes, like TensorRT's builder does for the duration of getOutputShapes.
class FakeExprBuilder final : public nvinfer1::IExprBuilder {
 public:
  FakeExprBuilder() : impl_(*this) { mImpl = &impl_; }
  ~FakeExprBuilder() noexcept override = default;

  nvinfer1::IDimensionExpr const* make(bool constant, int64_t value) {
    arena_.push_back(std::make_unique<FakeDimExpr>(constant, value));
    return arena_.back().get();
  }
  nvinfer1::IDimensionExpr const* symbol() { return make(false, 0); }

  // dims >= 0 become constants, -1 becomes a fresh symbol (a dynamic dimension).
  nvinfer1::DimsExprs dims(const std::vector<int64_t>& extents) {
    nvinfer1::DimsExprs out{};
    out.nbDims = static_cast<int32_t>(extents.size());
    for (size_t i = 0; i < extents.size(); ++i) out.d[i] = extents[i] < 0 ? symbol() : constant(extents[i]);
    return out;
  }

 private:
  struct Impl final : nvinfer1::apiv::VExprBuilder {
    explicit Impl(FakeExprBuilder& owner) : owner(owner) {}
    nvinfer1::IDimensionExpr const* constant(int64_t value) override { return owner.make(true, value); }
    nvinfer1::IDimensionExpr const* operation(nvinfer1::DimensionOperation op, nvinfer1::IDimensionExpr const& a,
                                              nvinfer1::IDimensionExpr const& b) override {
      if (!a.isConstant() || !b.isConstant()) return owner.symbol();
      const int64_t x = a.getConstantValue(), y = b.getConstantValue();
      using Op = nvinfer1::DimensionOperation;
      switch (op) {
        case Op::kSUM: return owner.make(true, x + y);
        case Op::kPROD: return owner.make(true, x * y);
        case Op::kMAX: return owner.make(true, x > y ? x : y);
        case Op::kMIN: return owner.make(true, x < y ? x : y);
        case Op::kSUB: return owner.make(true, x - y);
        case Op::kEQUAL: return owner.make(true, x == y);
        case Op::kLESS: return owner.make(true, x < y);
        case Op::kFLOOR_DIV: return owner.make(true, x / y - ((x % y != 0) && ((x < 0) != (y < 0))));
        case Op::kCEIL_DIV: return owner.make(true, x / y + ((x % y != 0) && ((x < 0) == (y < 0))));
      }
      return nullptr;
    }
    nvinfer1::IDimensionExpr const* declareSizeTensor(int32_t, nvinfer1::IDimensionExpr const&,
                                                      nvinfer1::IDimensionExpr const&) override {
      owner.arena_.push_back(std::make_unique<FakeDimExpr>(false, 0, true));
      return owner.arena_.back().get();
    }
    FakeExprBuilder& owner;
  };
  Impl impl_;
  std::deque<std::unique_ptr<FakeDimExpr>> arena_;
};

// Collects what the plugin logs, so tests can check error wording.
class CapturingLogger final : public nvinfer1::ILogger {
 public:
  void log(Severity severity, nvinfer1::AsciiChar const* msg) noexcept override {
    std::lock_guard<std::mutex> lock(mutex_);
    messages_.push_back({severity, msg ? msg : ""});
  }
  std::string last_error() const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = messages_.rbegin(); it != messages_.rend(); ++it) {
      if (it->first <= Severity::kERROR) return it->second;
    }
    return {};
  }
  size_t error_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t n = 0;
    for (const auto& m : messages_) n += m.first <= Severity::kERROR;
    return n;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<Severity, std::string>> messages_;
};

class FakeLoggerFinder final : public nvinfer1::ILoggerFinder {
 public:
  explicit FakeLoggerFinder(nvinfer1::ILogger& logger) : logger_(logger) {}
  ~FakeLoggerFinder() override = default;
  nvinfer1::ILogger* findLogger() override { return &logger_; }

 private:
  nvinfer1::ILogger& logger_;
};

class RecordingErrorRecorder final : public nvinfer1::IErrorRecorder {
 public:
  int32_t getNbErrors() const noexcept override { return static_cast<int32_t>(errors_.size()); }
  nvinfer1::ErrorCode getErrorCode(int32_t i) const noexcept override { return errors_.at(i).first; }
  ErrorDesc getErrorDesc(int32_t i) const noexcept override { return errors_.at(i).second.c_str(); }
  bool hasOverflowed() const noexcept override { return false; }
  void clear() noexcept override { errors_.clear(); }
  bool reportError(nvinfer1::ErrorCode code, ErrorDesc desc) noexcept override {
    errors_.push_back({code, desc ? desc : ""});
    return true;
  }
  RefCount incRefCount() noexcept override { return ++refs_; }
  RefCount decRefCount() noexcept override { return --refs_; }

 private:
  std::vector<std::pair<nvinfer1::ErrorCode, std::string>> errors_;
  RefCount refs_ = 0;
};

class FakeResourceContext final : public nvinfer1::IPluginResourceContext {
 public:
  explicit FakeResourceContext(nvinfer1::IErrorRecorder* recorder) : recorder_(recorder) {}
  ~FakeResourceContext() noexcept override = default;
  nvinfer1::IGpuAllocator* getGpuAllocator() const noexcept override { return nullptr; }
  nvinfer1::IErrorRecorder* getErrorRecorder() const noexcept override { return recorder_; }

 private:
  nvinfer1::IErrorRecorder* recorder_;
};

}  // namespace sage_test
