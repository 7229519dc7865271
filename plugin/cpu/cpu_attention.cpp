#include "cpu_attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include "host_tensor.h"
#include "numerics.h"
#include "quant_groups.h"
#include "quantize.h"

namespace sage {
namespace {

using schema::PvAccum;
using schema::PvDtype;

constexpr float kLog2e = 1.4426950408889634f;

// K and V of one (batch, kv-head), quantized once and shared by every query head of the group.
struct PreparedKV {
  cpu::IntRows k;
  cpu::PreparedV v;
  std::vector<uint8_t> valid;  // keys not removed by key_lengths or a bool key-padding mask
  int64_t causal_offset = 0;   // key j is causal-visible from query i when j <= i + causal_offset
};

int64_t valid_key_count(const AttentionParams& p, int64_t b) {
  const int64_t n = p.shape.kv_len;
  if (p.key_lengths.data == nullptr) return n;
  const int64_t len = p.key_lengths.is_int64 ? static_cast<const int64_t*>(p.key_lengths.data)[b]
                                             : static_cast<const int32_t*>(p.key_lengths.data)[b];
  return std::clamp<int64_t>(len, 0, n);
}

int64_t mask_offset(const MaskDesc& m, int64_t b, int64_t h, int64_t i) {
  return b * m.stride_b + h * m.stride_h + i * m.stride_q;
}

bool mask_allows(const MaskDesc& m, int64_t offset) { return static_cast<const uint8_t*>(m.data)[offset] != 0; }

float mask_value(const MaskDesc& m, int64_t offset) {
  float v = 0.f;
  cpu::load_row(m.data, m.dtype, offset, 1, &v);
  return v;
}

// Runs fn(i) for i in [0, n) on up to `threads` threads; the first exception is rethrown.
template <class Fn>
void parallel_for(int64_t n, int threads, Fn&& fn) {
  const int workers = static_cast<int>(std::min<int64_t>(n, std::max(1, threads)));
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    for (int64_t i = next++; i < n; i = next++) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

void prepare_kv(const AttentionParams& p, int64_t b, int64_t g, PreparedKV& out) {
  const auto& s = p.shape;
  const int64_t n = s.kv_len, dim = s.head_dim;
  std::vector<float> k(static_cast<size_t>(n * dim)), v(static_cast<size_t>(n * dim));
  for (int64_t j = 0; j < n; ++j) {
    cpu::load_row(p.k, p.dtype, cpu::row_offset(p.k_strides, b, g, j), dim, &k[j * dim]);
    cpu::load_row(p.v, p.dtype, cpu::row_offset(p.v_strides, b, g, j), dim, &v[j * dim]);
  }
  // Padding keys take no part at all: zeroed before smoothing and quantization, never scored.
  const int64_t len = valid_key_count(p, b);
  const bool padding_mask = p.mask.kind == MaskDesc::Kind::kBool && p.mask.key_padding;
  out.valid.assign(static_cast<size_t>(n), 0);
  int64_t count = 0;
  for (int64_t j = 0; j < len; ++j) {
    out.valid[j] = !padding_mask || mask_allows(p.mask, mask_offset(p.mask, b, 0, 0) + j);
    count += out.valid[j];
  }
  for (int64_t j = 0; j < n; ++j) {
    if (out.valid[j]) continue;
    std::fill(&k[j * dim], &k[j * dim] + dim, 0.f);
    std::fill(&v[j * dim], &v[j * dim] + dim, 0.f);
  }
  out.causal_offset = p.attrs.causal_alignment == schema::CausalAlignment::kBottomRight ? len - p.shape.q_len : 0;
  if (p.attrs.smooth_k && count > 0) {
    std::vector<float> mean(static_cast<size_t>(dim), 0.f);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t d = 0; d < dim; ++d) mean[d] += k[j * dim + d];
    for (int64_t d = 0; d < dim; ++d) mean[d] /= static_cast<float>(count);
    for (int64_t j = 0; j < n; ++j) {
      if (!out.valid[j]) continue;
      for (int64_t d = 0; d < dim; ++d) k[j * dim + d] -= mean[d];
    }
  }
  std::vector<int64_t> group(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) group[j] = k_group_of(j, p.attrs.qk_granularity);
  cpu::quantize_int_groups(k.data(), n, dim, group, k_groups(n, p.attrs.qk_granularity), qmax_of(p.attrs.qk_quant),
                           out.k);
  cpu::prepare_v(v.data(), n, dim, p.attrs, out.v);
}

int32_t dot_i8(const int8_t* a, const int8_t* b, int64_t n) {
  int32_t acc = 0;
  for (int64_t d = 0; d < n; ++d) acc += static_cast<int32_t>(a[d]) * static_cast<int32_t>(b[d]);
  return acc;
}

// One query tile (up to kBlockQ rows of one batch/head): quantize it, then run the online softmax over
// 64-key blocks exactly as docs/OP_CONTRACT.md §4-§7 describe.
void attend_query_tile(const AttentionParams& p, const PreparedKV& kv, int64_t b, int64_t h, int64_t tile) {
  const auto& s = p.shape;
  const auto& a = p.attrs;
  const int64_t dim = s.head_dim, nk = s.kv_len;
  const int64_t first = tile * kBlockQ, rows = std::min<int64_t>(kBlockQ, s.q_len - first);

  std::vector<float> q(static_cast<size_t>(rows * dim));
  for (int64_t r = 0; r < rows; ++r)
    cpu::load_row(p.q, p.dtype, cpu::row_offset(p.q_strides, b, h, first + r), dim, &q[r * dim]);

  // Smooth Q: the tile mean, quantized to int8, is subtracted; its codes give the dS correction per key.
  std::vector<float> delta_s;
  if (a.smooth_q) {
    std::vector<float> mean(static_cast<size_t>(dim), 0.f);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t d = 0; d < dim; ++d) mean[d] += q[r * dim + d];
    for (int64_t d = 0; d < dim; ++d) mean[d] /= static_cast<float>(rows);
    cpu::IntRows qbar;
    cpu::quantize_int_groups(mean.data(), 1, dim, {0}, 1, 127, qbar);
    // Subtract the dequantized mean, so that dS (built from the same codes) compensates it exactly.
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t d = 0; d < dim; ++d) q[r * dim + d] -= qbar.row_scale[0] * static_cast<float>(qbar.codes[d]);
    delta_s.resize(static_cast<size_t>(nk));
    for (int64_t j = 0; j < nk; ++j) {
      const int32_t dot = dot_i8(qbar.codes.data(), &kv.k.codes[j * dim], dim);
      delta_s[j] = qbar.row_scale[0] * kv.k.row_scale[j] * static_cast<float>(dot);
    }
  }

  std::vector<int64_t> group(static_cast<size_t>(rows));
  const int64_t group_base = q_group_of(first, a.qk_granularity);
  for (int64_t r = 0; r < rows; ++r) group[r] = q_group_of(first + r, a.qk_granularity) - group_base;
  const int64_t tile_groups = *std::max_element(group.begin(), group.end()) + 1;
  cpu::IntRows qi;
  cpu::quantize_int_groups(q.data(), rows, dim, group, tile_groups, qmax_of(a.qk_quant), qi);

  const bool fp8 = a.pv_dtype == PvDtype::kFp8E4m3;
  const bool fp16_acc = a.pv_accum == PvAccum::kFp16;
  const int64_t chunk = fp8 ? 32 : 16;  // keys per P~.V MMA, where an fp16 accumulator is rounded
  const float t_scale = p.softmax_scale * kLog2e;
  const float* vals = kv.v.values.data();

  std::vector<float> o(static_cast<size_t>(dim)), r_acc(static_cast<size_t>(dim)), r_chunk(static_cast<size_t>(dim));
  std::vector<float> t(kBlockK), pw(kBlockK);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const MaskDesc& mask = p.mask;
  const bool general_bool = mask.kind == MaskDesc::Kind::kBool && !mask.key_padding;
  const bool additive = mask.kind == MaskDesc::Kind::kAdditive;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = first + r;
    const int64_t key_end = a.is_causal ? std::clamp<int64_t>(i + kv.causal_offset + 1, 0, nk) : nk;
    const int64_t mrow = mask.kind == MaskDesc::Kind::kNone ? 0 : mask_offset(mask, b, h, i);
    const int8_t* qc = &qi.codes[r * dim];
    float m = neg_inf, l = 0.f;
    std::fill(o.begin(), o.end(), 0.f);
    for (int64_t j0 = 0; j0 < key_end; j0 += kBlockK) {
      const int64_t n = std::min<int64_t>(kBlockK, key_end - j0);
      float block_max = neg_inf;
      for (int64_t jj = 0; jj < n; ++jj) {
        const int64_t j = j0 + jj;
        t[jj] = neg_inf;  // masked keys: excluded from the max and given p = 0
        if (!kv.valid[j] || (general_bool && !mask_allows(mask, mrow + j))) continue;
        float sc = qi.row_scale[r] * kv.k.row_scale[j] * static_cast<float>(dot_i8(qc, &kv.k.codes[j * dim], dim));
        if (a.smooth_q) sc += delta_s[j];
        t[jj] = sc * t_scale;
        if (additive) t[jj] += kLog2e * mask_value(mask, mrow + j);
        block_max = std::max(block_max, t[jj]);
      }
      if (block_max == neg_inf) continue;  // no visible key in this block for this row
      const float m_new = std::max(m, block_max);
      const float alpha = std::isinf(m) ? 0.f : std::exp2(m - m_new);
      float psum = 0.f;
      for (int64_t jj = 0; jj < n; ++jj) {
        const float pj = t[jj] == neg_inf ? 0.f : std::exp2(t[jj] - m_new);
        psum += pj;
        pw[jj] = fp8 ? num::round_to_e4m3(pj * kPRange) : num::round_to_half(pj);
      }
      l = alpha * l + psum;
      m = m_new;
      std::fill(r_acc.begin(), r_acc.end(), 0.f);
      for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        std::fill(r_chunk.begin(), r_chunk.end(), 0.f);
        const int64_t c1 = std::min(n, c0 + chunk);
        for (int64_t jj = c0; jj < c1; ++jj) {
          const float* vr = &vals[(j0 + jj) * dim];
          const float pj = pw[jj];
          for (int64_t d = 0; d < dim; ++d) r_chunk[d] += pj * vr[d];
        }
        if (fp16_acc) {
          for (int64_t d = 0; d < dim; ++d) r_acc[d] = num::round_to_half(r_acc[d] + r_chunk[d]);
        } else {
          for (int64_t d = 0; d < dim; ++d) r_acc[d] += r_chunk[d];
        }
      }
      for (int64_t d = 0; d < dim; ++d) o[d] = alpha * o[d] + r_acc[d];
    }
    const float inv_l = l > 0.f ? 1.f / l : 0.f;  // a row with every key masked gives 0
    for (int64_t d = 0; d < dim; ++d) o[d] = o[d] * inv_l * kv.v.channel_scale[d];
    cpu::store_row(p.out, p.dtype, cpu::row_offset(p.out_strides, b, h, i), dim, o.data());
  }
}

}  // namespace

std::string run_cpu_attention(const AttentionParams& p, int num_threads) {
  const auto& s = p.shape;
  if (s.batch == 0 || s.q_heads == 0 || s.q_len == 0) return {};
  if (num_threads <= 0) num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  try {
    std::vector<PreparedKV> kv(static_cast<size_t>(s.batch * s.kv_heads));
    parallel_for(s.batch * s.kv_heads, num_threads,
                 [&](int64_t i) { prepare_kv(p, i / s.kv_heads, i % s.kv_heads, kv[static_cast<size_t>(i)]); });
    const int64_t tiles = ceil_div(s.q_len, kBlockQ);
    const int64_t group = s.q_heads / s.kv_heads;
    parallel_for(s.batch * s.q_heads * tiles, num_threads, [&](int64_t i) {
      const int64_t tile = i % tiles, bh = i / tiles, b = bh / s.q_heads, h = bh % s.q_heads;
      attend_query_tile(p, kv[static_cast<size_t>(b * s.kv_heads + h / group)], b, h, tile);
    });
  } catch (const std::exception& e) {
    return std::string("CPU SageAttention failed: ") + e.what();
  }
  return {};
}

}  // namespace sage
