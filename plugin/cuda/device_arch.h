// Compute capability of the current device as major*10 + minor, queried once per device and cached
// (a host attribute query: no device work, safe during graph capture).
#pragma once
#include <string>

namespace sage::cuda {

// Returns the arch (e.g. 80, 89, 90) or 0 with `error` set.
int current_device_arch(std::string* error);

}  // namespace sage::cuda
