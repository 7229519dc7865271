// Ping-pong of the consumer warpgroups' wgmma issue: warpgroup w issues the Q.K^T and P~.V of a loop step only
// after warpgroup w - 1 (cyclically) issued those of its own step. The tensor core of each SM sub-partition
// executes wgmmas in issue order, so one warpgroup's GEMMs run whole while the other warpgroup computes its
// softmax; without the turns both warpgroups issue at the same moment, their wgmmas interleave, both wait
// for the later of the two and then run their softmaxes at the same time (contending for issue and MUFU).
//
// Warpgroup w syncs on named barrier kFirstBarrier + w (its 128 threads + 128 arriving ones) and then arrives
// on its successor's. Every warpgroup takes the same number of turns, `total` (the most loop steps any
// warpgroup of the CTA runs: causal warpgroups stop at different blocks); one that runs out of steps takes
// empty turns at the end. The last warpgroup opens the cycle with one arrival on warpgroup 0's barrier and
// does not arrive after its final turn, so every barrier ends with nothing pending.
#pragma once

#include "../device/ptx_sm90.cuh"

namespace sage::sm90 {

template <int kWarpgroups, bool kEnabled>
struct IssueTurns {
  static constexpr int kFirstBarrier = 1;
  static constexpr int kCount = 256;  // the syncing warpgroup + the arriving one

  int mine;
  int next;
  int total;
  int taken = 0;
  bool closes;  // the last warpgroup: no arrival after the final turn

  __device__ __forceinline__ IssueTurns(int cwg, int total_turns)
      : mine(kFirstBarrier + cwg),
        next(kFirstBarrier + (cwg + 1) % kWarpgroups),
        total(total_turns),
        closes(cwg == kWarpgroups - 1) {
    if constexpr (kEnabled) {
      if (closes && total > 0) named_bar_arrive(kFirstBarrier, kCount);
    }
  }

  __device__ __forceinline__ void begin() {
    if constexpr (kEnabled) named_bar_sync(mine, kCount);
  }

  __device__ __forceinline__ void end() {
    if constexpr (kEnabled) {
      ++taken;
      if (!(closes && taken == total)) named_bar_arrive(next, kCount);
    }
  }

  // Empty turns up to `total`, so that the other warpgroups' turns complete.
  __device__ __forceinline__ void finish() {
    if constexpr (kEnabled) {
      while (taken < total) {
        begin();
        end();
      }
    }
  }
};

}  // namespace sage::sm90
