// A minimal check counter for the driver: prints one line per check, remembers failures.
#pragma once
#include <cstdio>
#include <string>

namespace sage_test {

class Checks {
 public:
  bool operator()(bool ok, const std::string& what, const std::string& detail = {}) {
    std::printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what.c_str(), detail.empty() ? "" : " -- ", detail.c_str());
    failures_ += ok ? 0 : 1;
    count_ += 1;
    return ok;
  }
  void section(const char* name) { std::printf("\n== %s\n", name); }
  int failures() const { return failures_; }
  int count() const { return count_; }

 private:
  int failures_ = 0;
  int count_ = 0;
};

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace sage_test
