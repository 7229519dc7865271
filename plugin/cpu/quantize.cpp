#include "quantize.h"

#include <algorithm>
#include <cmath>

#include "numerics.h"
#include "quant_groups.h"

namespace sage::cpu {

void quantize_int_groups(const float* x, int64_t rows, int64_t dim, const std::vector<int64_t>& group_of_row,
                         int64_t num_groups, int qmax, IntRows& out) {
  std::vector<float> amax(static_cast<size_t>(num_groups), 0.f);
  for (int64_t r = 0; r < rows; ++r) {
    float& a = amax[static_cast<size_t>(group_of_row[r])];
    for (int64_t d = 0; d < dim; ++d) a = std::max(a, std::fabs(x[r * dim + d]));
  }
  out.codes.assign(static_cast<size_t>(rows * dim), 0);
  out.row_scale.assign(static_cast<size_t>(rows), 0.f);
  const float fq = static_cast<float>(qmax);
  for (int64_t r = 0; r < rows; ++r) {
    const float a = amax[static_cast<size_t>(group_of_row[r])];
    if (a == 0.f) continue;  // zero group: scale 0, codes 0
    const float inv = fq / a;
    out.row_scale[r] = a / fq;
    for (int64_t d = 0; d < dim; ++d) {
      const float c = std::clamp(num::round_half_away(x[r * dim + d] * inv), -fq, fq);
      out.codes[r * dim + d] = static_cast<int8_t>(c);
    }
  }
}

void prepare_v(const float* v, int64_t kv_len, int64_t dim, const schema::Attributes& attrs, PreparedV& out) {
  out.values.resize(static_cast<size_t>(kv_len * dim));
  out.channel_scale.assign(static_cast<size_t>(dim), 1.f);
  if (attrs.pv_dtype == schema::PvDtype::kFp16) {
    for (int64_t i = 0; i < kv_len * dim; ++i) out.values[i] = num::round_to_half(v[i]);
    return;
  }
  const float vr = v_range_of(attrs.pv_accum);
  std::vector<float> amax(static_cast<size_t>(dim), 0.f);
  for (int64_t j = 0; j < kv_len; ++j)
    for (int64_t d = 0; d < dim; ++d) amax[d] = std::max(amax[d], std::fabs(v[j * dim + d]));
  std::vector<float> inv(static_cast<size_t>(dim), 0.f);
  for (int64_t d = 0; d < dim; ++d) {
    inv[d] = amax[d] > 0.f ? vr / amax[d] : 0.f;
    out.channel_scale[d] = (amax[d] / vr) / kPRange;
  }
  for (int64_t j = 0; j < kv_len; ++j)
    for (int64_t d = 0; d < dim; ++d) out.values[j * dim + d] = num::round_to_e4m3(v[j * dim + d] * inv[d]);
}

}  // namespace sage::cpu
