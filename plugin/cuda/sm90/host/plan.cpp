#include "plan.h"

#include <algorithm>

#include "quant_groups.h"

namespace sage::sm90 {
namespace {

size_t align256(size_t x) { return (x + 255) & ~static_cast<size_t>(255); }

// Enough stats CTAs to cover the GPU a few times over, but few enough that every pass-2 CTA can re-reduce
// its head's partials cheaply (stat_chunks * Dp floats from L2).
constexpr int64_t kStatTargetCtas = 1056;
constexpr int64_t kMaxStatChunks = 32;
constexpr int64_t kMinStatChunkLen = 64;

}  // namespace

Plan make_plan(const AttentionParams& p) {
  const AttentionShape& s = p.shape;
  const auto gran = p.attrs.qk_granularity;
  Plan plan;
  plan.head_dim_padded = s.head_dim <= 64 ? 64 : 128;
  const int64_t dp = plan.head_dim_padded;
  plan.q_tiles = static_cast<int>(ceil_div(s.q_len, kBlockQ));
  plan.q_blocks = static_cast<int>(s.batch * s.q_heads * plan.q_tiles);
  const int64_t kv_heads = s.batch * s.kv_heads;
  int64_t chunks = std::max<int64_t>(1, ceil_div(kStatTargetCtas, std::max<int64_t>(1, kv_heads)));
  chunks = std::min({chunks, kMaxStatChunks, std::max<int64_t>(1, ceil_div(s.kv_len, kMinStatChunkLen))});
  const int64_t chunk_len = ceil_div(ceil_div(s.kv_len, chunks), 8) * 8;
  plan.stat_chunk_len = static_cast<int>(std::max<int64_t>(8, chunk_len));
  plan.stat_chunks = static_cast<int>(std::max<int64_t>(1, ceil_div(s.kv_len, plan.stat_chunk_len)));
  plan.kv_tiles = static_cast<int>(ceil_div(s.kv_len, 128));
  plan.kv_len16 = static_cast<int>(ceil_div(s.kv_len, 16) * 16);
  plan.q_groups = q_groups(s.q_len, gran);
  plan.k_groups = k_groups(s.kv_len, gran);
  plan.key_padding = p.mask.kind == MaskDesc::Kind::kBool && p.mask.key_padding;
  plan.general_mask = p.mask.kind != MaskDesc::Kind::kNone && !plan.key_padding;
  plan.key_tiles = static_cast<int>(ceil_div(s.kv_len, kBlockK));

  size_t at = 0;
  auto take = [&at](size_t bytes) {
    const size_t off = at;
    at = align256(at + bytes);
    return off;
  };
  const size_t bq = static_cast<size_t>(s.batch * s.q_heads);
  const size_t bk = static_cast<size_t>(kv_heads);
  plan.q8 = take(bq * static_cast<size_t>(s.q_len) * dp);
  plan.k8 = take(bk * static_cast<size_t>(s.kv_len) * dp);
  plan.v8t = take(bk * dp * static_cast<size_t>(plan.kv_len16));
  plan.q_scale = take(bq * static_cast<size_t>(plan.q_groups) * sizeof(float));
  plan.k_scale = take(bk * static_cast<size_t>(plan.k_groups) * sizeof(float));
  plan.v_scale = take(bk * dp * sizeof(float));
  plan.part_ksum = take(bk * static_cast<size_t>(plan.stat_chunks) * dp * sizeof(float));
  plan.part_vmax = take(bk * static_cast<size_t>(plan.stat_chunks) * dp * sizeof(float));
  if (plan.key_padding) {
    plan.key_bits = take(static_cast<size_t>(s.batch) * plan.key_tiles * sizeof(uint64_t));
    plan.key_stats = take(static_cast<size_t>(s.batch) * 2 * sizeof(int32_t));
  }
  plan.total = at;
  return plan;
}

}  // namespace sage::sm90
