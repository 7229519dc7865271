#!/usr/bin/env bash
# Nsight Compute source-level profile of the sm90 attention kernel (stall samples per SASS instruction) and the
# quantization passes, in one device call (carry build/sm90). Writes $OUT/src_<tag>.csv (source page, SASS),
# $OUT/sum_<tag>.txt (sections) per PROFILES entry "tag:n:d:causal:batch"; KERNEL: a regex for another kernel
# (e.g. sm90_prepass_kv).
set -o pipefail
OUT="${OUT:-/tmp/sm90_out}"; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 SAGE_SM90_LIB="$PWD/build/sm90/libsage_sm90.so"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader
ncu --version | tail -1
for prof in ${PROFILES:-d128n8k:8192:128:0:1 d128n1k:1024:128:0:4}; do
  IFS=: read -r tag n d causal batch <<<"$prof"
  run=(env PYTHONPATH=$PWD python3 tests/gpu_sm90/profile_sm90.py --n "$n" --d "$d" --causal "$causal" --batch "$batch")
  timeout 200 ncu --clock-control none -k "regex:${KERNEL:-sage_sm90_attention_kernel}" -c 1 --import-source no \
    --section SourceCounters --section WarpStateStats --section SpeedOfLight --section SchedulerStats \
    --section ComputeWorkloadAnalysis --section LaunchStats --section Occupancy -f -o "/root/prof_$tag" "${run[@]}" >/dev/null 2>&1 \
    || echo "ncu $tag failed"
  ncu -i "/root/prof_$tag.ncu-rep" --page details > "$OUT/sum_$tag.txt" 2>&1
  ncu -i "/root/prof_$tag.ncu-rep" --page source --csv --print-source sass > "$OUT/src_$tag.csv" 2>"$OUT/src_$tag.err" \
    || head -c 2000 "$OUT/src_$tag.err"
  ls -la "$OUT/src_$tag.csv"; grep -E "Duration|Issue Slots Busy|No Eligible|Warp Cycles Per Issued" "$OUT/sum_$tag.txt" | head -6
  # Every kernel of the op (both quantization passes and the attention kernel): duration and DRAM throughput.
  timeout 120 ncu --clock-control none -k regex:sm90 --section SpeedOfLight --section MemoryWorkloadAnalysis "${run[@]}" 2>&1 \
    | grep -E "sm90_|Duration|DRAM Throughput|Memory Throughput|Compute \(SM\) Throughput" | tee "$OUT/kernels_$tag.txt"
done
