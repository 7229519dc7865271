// Workspace layout and launch geometry of one sm_90a call, a pure function of shapes and attributes
// (pointers are ignored), so sm90_workspace_bytes() and run_sm90_attention() always agree.
#pragma once
#include <cstddef>
#include <cstdint>

#include "params.h"

namespace sage::sm90 {

struct Plan {
  int head_dim_padded = 0;  // 64 or 128
  int q_tiles = 0;          // ceil(Sq / 128): Q CTAs of pass 1 per (batch, q head)
  int q_blocks = 0;         // B * Hq * q_tiles
  int stat_chunks = 0;      // pass-1 stats CTAs per kv head
  int stat_chunk_len = 0;
  int kv_tiles = 0;         // ceil(Skv / 128): pass-2 CTAs per kv head
  int kv_len16 = 0;         // V^T row pitch
  int64_t q_groups = 0;
  int64_t k_groups = 0;
  // Masks (docs/OP_CONTRACT.md "Masks"): a bool key-padding attn_mask takes the key-validity pass
  // (plugin/cuda/preprocess/key_validity.cu), whose bits and stats live in the workspace.
  bool key_padding = false;  // bool attn_mask that depends on (batch, key) only
  bool general_mask = false; // any other attn_mask (bool 4-D, additive)
  int key_tiles = 0;         // ceil(Skv / 64): 64-bit key words per batch
  // Byte offsets into the workspace (each 256-aligned) and the total.
  size_t q8 = 0, k8 = 0, v8t = 0, q_scale = 0, k_scale = 0, v_scale = 0, part_ksum = 0, part_vmax = 0;
  size_t key_bits = 0, key_stats = 0;  // key_padding: [B][key_tiles] uint64, [B][2] int32
  size_t total = 0;
};

Plan make_plan(const AttentionParams& p);

}  // namespace sage::sm90
