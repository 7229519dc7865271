#!/usr/bin/env bash
# One call on the GPU machine (device `run` tool), from the repository root:
#   plugin/cuda/sm90/tools/device_check.sh [tests] [diag] [bench-quick] [bench] [sanitize]
# Uses the carried build/sm90/libsage_sm90.so when it loads there, else builds into /root/build/sm90.
# "diag" runs only when the tests failed (or when given alone). Logs go to $OUT.
set -o pipefail
OUT="${OUT:-/tmp/sm90_out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv | tee "$OUT/gpu.txt"
export SAGE_SM90_LIB="$PWD/build/sm90/libsage_sm90.so"
if ! python3 -c "import ctypes, os; ctypes.CDLL(os.environ['SAGE_SM90_LIB'])" 2>/dev/null; then
  echo "carried library does not load here; building"
  JOBS=16 plugin/cuda/sm90/build_standalone.sh /root/build/sm90 2>&1 | tail -3
  export SAGE_SM90_LIB=/root/build/sm90/libsage_sm90.so
fi
modes=" $* "
tests_failed=0
if [[ "$modes" == *" tests "* ]]; then
  timeout 300 python3 -m pytest tests/gpu_sm90 -q -p no:cacheprovider -rfEs --tb=short 2>&1 | tee "$OUT/tests.log" | tail -60
  tests_failed=$?
  [[ ${PIPESTATUS[0]} -ne 0 ]] && tests_failed=1
fi
if [[ "$modes" == *" diag "* ]] && { [[ $tests_failed -ne 0 ]] || [[ "$modes" != *" tests "* ]]; }; then
  for args in "--n 300" "--n 300 --causal 1" "--n 200 --d 64 --gran per_warp" "--n 130 --nk 500 --gran per_block"; do
    echo "== diagnose $args"; timeout 120 python3 tests/gpu_sm90/diagnose_sm90.py $args 2>&1 | tee -a "$OUT/diag.log"
  done
fi
if [[ "$modes" == *" sanitize "* ]]; then
  timeout 240 compute-sanitizer --tool memcheck --print-limit 20 python3 tests/gpu_sm90/diagnose_sm90.py --n 150 2>&1 | tail -40 | tee "$OUT/sanitize.log"
fi
if [[ "$modes" == *" bench-quick "* ]] && [[ $tests_failed -eq 0 ]]; then
  timeout 300 python3 bench/bench_sm90.py --quick --out "$OUT" 2>&1 | tail -20
fi
if [[ "$modes" == *" bench "* ]] && [[ $tests_failed -eq 0 ]]; then
  timeout 560 python3 bench/bench_sm90.py --out "$OUT" 2>&1 | tail -40
fi
