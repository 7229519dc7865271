#!/usr/bin/env bash
# Kernel experiments in one device call: tests on build/sm90, kernel-only timings of every variant library
# carried under build/sm90_var/<name>/, and an Nsight Compute profile of the default kernel.
set -o pipefail
OUT="${OUT:-/tmp/sm90_out}"; mkdir -p "$OUT"
# TEST_VARIANT=<name>: run the tests on that variant instead of build/sm90.
export PYTHONUNBUFFERED=1 SAGE_SM90_LIB="$PWD/build/sm90/libsage_sm90.so"
if [[ -n "${TEST_VARIANT:-}" ]]; then SAGE_SM90_LIB="$PWD/build/sm90_var/$TEST_VARIANT/libsage_sm90.so"; fi
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
if [[ -z "${SKIP_TESTS:-}" ]]; then
  timeout 200 python3 -m pytest tests/gpu_sm90 -q -p no:cacheprovider -rfEs --tb=short -x 2>&1 | tail -15 | tee "$OUT/tests.log"
fi
POINTS="${POINTS:-128:8192:0,128:8192:1,64:16384:0,128:1024:0}"
for v in ${VARIANTS:-A B C D CD BCD}; do
  timeout 120 python3 bench/bench_sm90.py --no-sdpa --points "$POINTS" --tag "$v" --lib "build/sm90_var/$v/libsage_sm90.so" \
    --warmup 10 --rep 40 --out "$OUT/var_$v" 2>&1 | grep "TOPS" 
done
if [[ "${NCU:-1}" == 1 ]] && command -v ncu >/dev/null; then
  timeout 150 ncu --clock-control none -k regex:sage_sm90_attention_kernel -c 1 --section SpeedOfLight \
    --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section InstructionStats \
    env PYTHONPATH=$PWD python3 tests/gpu_sm90/profile_sm90.py --n 8192 --d 128 > "$OUT/ncu.txt" 2>&1
  grep -E "Duration|Elapsed Cycles|Issue Slots|No Eligible|Eligible Warps|Warp Cycles Per Issued|Executed Instructions  |highest-utilized" "$OUT/ncu.txt" | head -12
  timeout 60 ncu --clock-control none -k regex:sage_sm90_attention_kernel -c 1 --metrics \
    "regex:smsp__average_warps_issue_stalled_.*_per_issue_active" \
    env PYTHONPATH=$PWD python3 tests/gpu_sm90/profile_sm90.py --n 8192 --d 128 2>&1 | grep -E "stalled|pipe|rror" | sort -k3 -n -r | head -14
fi
