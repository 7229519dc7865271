// Plain argument structs of the sm_90a kernels (no framework or CUDA types), filled by sm90_entry.cpp.
#pragma once
#include <cstdint>

#include "../../common/key_validity.h"

namespace sage::sm90 {

// Quantized operands in the workspace, as the attention kernel reads them (see workspace.h):
//   q8  [B*Hq ][Sq ][Dp]  int8,  rows read by TMA
//   k8  [B*Hkv][Skv][Dp]  int8,  rows read by TMA
//   v8t [B*Hkv][Dp][Skv16] e4m3, V transposed, tokens permuted inside each 16-group (prepass.cuh)
struct AttnKernelParams {
  const float* q_scale;  // [B*Hq][q_groups]: deltaQ * sigma * log2(e)
  const float* k_scale;  // [B*Hkv][k_groups]: deltaK
  const float* v_scale;  // [B*Hkv][Dp]: deltaV = amaxV / Vr (0 for padded or all-zero channels)
  void* out;             // user output, element strides below
  int64_t out_batch_stride, out_head_stride, out_token_stride;
  int batch, q_heads, kv_heads, heads_per_kv;
  int q_len, kv_len, head_dim;  // head_dim: the real D (<= Dp)
  int q_groups, k_groups;       // scale slots per head (sage/quant_groups.h)
  int granularity;              // schema::QkGranularity
  int causal_offset;            // causal: key j is visible from row i when j <= i + causal_offset
                                // (0 top_left, Skv - Sq bottom_right)
  int out_pairs;                // 1: two adjacent output elements may be stored as one 2-vector
  int out_rows16;               // 1: base, strides and head_dim of the output are whole 16-byte units: rows
                                // go out as 16-byte pieces staged through shared memory (epilogue.cuh)
};

// The mask inputs, a second argument of the masked kernels only (kernels/attention_masked.cuh; the unmasked
// kernels' AttnKernelParams stays as small as it was, which keeps their code unchanged). Their kernel entry
// rewrites AttnKernelParams::kv_len and causal_offset per batch (batch_view) before anything else reads them.
struct AttnMaskParams {
  int causal_bottom_right;       // 1: the diagonal sits at L_b - Sq, L_b = the clamped key_lengths[b] (or Skv)
  sage::cuda::KeyValidity keys;  // key_lengths (clamped on the device) and a key-padding mask's bits and stats
  const void* mask;              // a general attn_mask (bool, not key padding, or additive), or null
  int mask_type;                 // MaskType of a general mask
  int mask_pairs;                // 1: the mask elements of keys 2t, 2t+1 load as one aligned pair
  int64_t mask_stride_b, mask_stride_h, mask_stride_q;  // elements; 0 for broadcast dimensions
};

// Element type of a general attn_mask (AttnMaskParams::mask_type).
enum class MaskType : int { kBool = 0, kFloat32 = 1, kFloat16 = 2, kBFloat16 = 3 };

struct PrepassParams {
  const void* q;
  const void* k;
  const void* v;
  int64_t q_batch_stride, q_head_stride, q_token_stride;
  int64_t k_batch_stride, k_head_stride, k_token_stride;
  int64_t v_batch_stride, v_head_stride, v_token_stride;
  int batch, q_heads, kv_heads, q_len, kv_len, head_dim;
  int granularity;  // schema::QkGranularity
  int qmax;         // 127: int4 requests run as int8 on this path
  int smooth_k;
  float q_fold;     // sigma * log2(e), folded into the Q scales
  float v_range;    // Vr of the contract (448, or 2.25 for a pv_accum = fp16 request)
  int q_groups, k_groups;
  int q_blocks;     // CTAs of pass 1 that quantize Q: B*Hq*ceil(Sq/128)
  int stat_chunks;  // CTAs per kv head that reduce K sums / V amax in pass 1
  int stat_chunk_len;
  int kv_tiles;     // ceil(Skv/128): tiles per kv head of pass 2 (a K and a V CTA each)
  int kv_len16;     // Skv rounded up to 16: row pitch of v8t
  int vec_q, vec_k, vec_v;  // 1: rows may be read with 16-byte loads
  int8_t* q8;
  int8_t* k8;
  uint8_t* v8t;
  float* q_scale;
  float* k_scale;
  float* v_scale;
  float* part_ksum;  // [B*Hkv][stat_chunks][Dp]
  float* part_vmax;  // [B*Hkv][stat_chunks][Dp]
  // Single-launch quantization (kv_cluster > 0, prepass.cuh): the K (V) CTAs of a kv head form one cluster of
  // kv_cluster = kv_tiles CTAs (at most 16) and reduce the head's statistics over distributed shared memory; the
  // Q CTAs come first, q_cluster_pad of them (q_blocks rounded up to whole clusters).
  int kv_cluster;
  int q_cluster_pad;
};

}  // namespace sage::sm90
