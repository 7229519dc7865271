// Host quantizers of docs/OP_CONTRACT.md: symmetric integer groups (§3) and the P~.V operands (§6).
#pragma once
#include <cstdint>
#include <vector>

#include "params.h"

namespace sage::cpu {

// Integer codes of `rows` x `dim` values, one scale per group; row_scale[r] is the scale of row r's group.
struct IntRows {
  std::vector<int8_t> codes;
  std::vector<float> row_scale;
};

// group_of_row[r] in [0, num_groups). Codes = clamp(round_half_away(x * qmax/amax), -qmax, qmax).
void quantize_int_groups(const float* x, int64_t rows, int64_t dim, const std::vector<int64_t>& group_of_row,
                         int64_t num_groups, int qmax, IntRows& out);

// V of one (batch, kv-head) prepared for P~.V: values as the MMA sees them (fp16- or e4m3-rounded, stored
// as float) and the per-channel dequantization factor applied in the epilogue (1 for fp16).
struct PreparedV {
  std::vector<float> values;        // [kv_len][dim]
  std::vector<float> channel_scale; // [dim]: deltaV / Pr for fp8, 1 for fp16
};

void prepare_v(const float* v, int64_t kv_len, int64_t dim, const schema::Attributes& attrs, PreparedV& out);

}  // namespace sage::cpu
