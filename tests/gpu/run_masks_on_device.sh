#!/usr/bin/env bash
# One short GPU session for the masks work (no build on the device): prebuilt libsage_cuda.so builds are carried in
# (new = this tree, base = the commit before it), logs go to $OUT. Steps in priority order, each with its own time
# limit so that one slow step cannot starve the rest:
#   1. tests/gpu/test_masks_gpu.py  2. bench/bench_masks.py (key_lengths fast path)  3. the existing kernel tests
#   (without the 384-case attribute grid and memcheck)  4. unmasked speed, base vs new, one process
#   5. compute-sanitizer memcheck of the mask cases.
#   bash tests/gpu/run_masks_on_device.sh [new/libsage_cuda.so] [base/libsage_cuda.so]
set -uo pipefail
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
NEW=${1:-.devcarry/new/libsage_cuda.so}
BASE=${2:-.devcarry/base/libsage_cuda.so}
export SAGE_CUDA_LIBRARY=$NEW
t0=$SECONDS
step() { echo "=== $1 (t=$((SECONDS - t0)) s)"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader

step "1. mask tests"
timeout "${T1:-75}" python3 -m pytest tests/gpu/test_masks_gpu.py -q -rfEP --tb=short -p no:cacheprovider \
  --durations=5 > "$OUT/pytest_masks.log" 2>&1
echo "exit $?"
grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/pytest_masks.log" | tail -30
grep -E "bit-exact" "$OUT/pytest_masks.log" | head -12

step "2. padding benchmark"
timeout "${T2:-45}" python3 bench/bench_masks.py --out "$OUT/bench" --repeats 3 2>&1 | grep -vE "^\|" | tail -40
cat "$OUT/bench/masks.md" 2>/dev/null | grep -E "key_lengths|unmasked"

step "3. existing kernel tests"
timeout "${T3:-45}" python3 -m pytest tests/gpu/test_cuda_kernels.py -q -rfE --tb=short -p no:cacheprovider \
  -k "not every_attribute_combination and not memcheck" > "$OUT/pytest_kernels.log" 2>&1
echo "exit $?"
grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/pytest_kernels.log" | tail -20

step "4. unmasked speed, base vs new"
timeout "${T4:-25}" python3 bench/ab_libraries.py "$BASE" "$NEW" --seqs 8192 --rounds 2 2>&1 | tail -8

step "5. memcheck, mask cases"
timeout "${T5:-30}" compute-sanitizer --tool memcheck --error-exitcode 1 python3 -c \
  "import sys; sys.path.insert(0, 'tests/gpu'); import memcheck_cases as m; print('cases', m.mask_cases('sm80') + m.mask_cases('sm89'))" \
  2>&1 | tail -4
echo "exit $?"
step "done"
