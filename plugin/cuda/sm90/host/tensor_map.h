// Host-side creation of the TMA tensor maps (cuTensorMapEncodeTiled, reached through the runtime's
// driver entry point so that nothing links libcuda directly). Pure host computation: safe during capture.
#pragma once
#include <cuda.h>

#include <cstdint>
#include <string>

namespace sage::sm90 {

// A 3-D byte tensor (dims innermost first, strides of dims 1 and 2 in bytes) read in boxes of
// box0 x box1 x 1 bytes with the given swizzle; out-of-range box parts read as zeros.
std::string encode_byte_tensor_map_3d(CUtensorMap* map, const void* base, uint64_t dim0, uint64_t dim1, uint64_t dim2,
                                      uint64_t stride1, uint64_t stride2, uint32_t box0, uint32_t box1,
                                      CUtensorMapSwizzle swizzle);

}  // namespace sage::sm90
