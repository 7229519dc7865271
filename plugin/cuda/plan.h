// The execution plan of one call: which kernel path and template configuration runs, the padded sizes, and
// the workspace layout. Computed from the params and the device arch only (never from device data), so the
// workspace size query and the run agree exactly.
#pragma once
#include <cstddef>
#include <string>

#include "params.h"

namespace sage::cuda {

enum class KernelPath { kSm80, kSm89 };
const char* to_string(KernelPath p);

// How attn_mask is applied (docs/OP_CONTRACT.md, "Masks"; key_lengths needs no mode: every kernel reads it).
enum class MaskMode {
  kNone,
  kKeyPadding,  // bool (B, Skv) / (B|1, 1, 1, Skv): a bitmask per 64-key tile, valid keys only in K/V statistics
  kGeneral,     // bool 4-D or additive: read tile by tile by the mask kernel
};

struct WorkspaceLayout {
  size_t q_codes = 0, q_scales = 0, k_codes = 0, k_scales = 0;
  size_t k_mean = 0, partials = 0, qbar_codes = 0, qbar_scales = 0;
  size_t v = 0, v_scale = 0, v_inv = 0;
  size_t key_bits = 0, key_stats = 0;  // kKeyPadding: [batch][kv_tiles] uint64, [batch][2] int32
  size_t total = 0;
};

struct Plan {
  KernelPath path = KernelPath::kSm80;
  bool fp8_pv = false;        // P~.V in FP8 (sm89 path)
  bool fp8_fallback = false;  // fp8_e4m3 was asked for on the sm80 path: FP16 P~.V runs instead
  bool int4 = false;
  bool accum_f16 = false;
  int head_dim_pad = 128;  // 64 or 128
  int qk_row_bytes = 128;
  int q_tiles = 0, q_len_pad = 0, kv_tiles = 0, kv_len_pad = 0;
  int q_slots = 0, k_slots = 0;  // scale slots per head
  int tokens_per_split = 0, splits = 0;
  bool v_direct = false;  // FP16 P~.V reads the caller's fp16 V in place (no V pass)
  MaskMode mask = MaskMode::kNone;
  bool key_lengths = false;
  float v_range = 448.f;
  float softmax_scale = 0.f;
  WorkspaceLayout ws;
};

// Validates `p` for `arch` (compute capability *10) and fills `plan`; "" on success, else why not.
std::string make_plan(const AttentionParams& p, int arch, Plan* plan);

// One-line description of the plan, e.g. for tests and logs.
std::string describe(const Plan& plan);

}  // namespace sage::cuda
