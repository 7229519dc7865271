#!/usr/bin/env bash
# What a GPU session runs (from the repository root): smoke check, the GPU tests (compute-sanitizer memcheck
# included) and the benchmark, with logs under $OUT (default ./gpu_out).
#   SAGE_CUDA_LIBRARY=<libsage_cuda.so> bash tests/gpu/run_on_device.sh [quick|full|none]
# Without SAGE_CUDA_LIBRARY it builds plugin/cuda for the local GPU into /root/build-cuda first.
set -uo pipefail
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
BENCH=${1:-quick}
if [ -z "${SAGE_CUDA_LIBRARY:-}" ]; then
  arch=$(python3 -c "import torch; m, n = torch.cuda.get_device_capability(); print(f'{m}{n}' + ('a' if m == 9 else ''))")
  cmake -S plugin/cuda -B /root/build-cuda -G Ninja -DSAGE_CUDA_ARCHS="${arch}-real" > "$OUT/build.log" 2>&1 &&
    cmake --build /root/build-cuda -j16 >> "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
  export SAGE_CUDA_LIBRARY=/root/build-cuda/libsage_cuda.so
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/device.txt"
timeout 120 python3 tests/gpu/smoke.py 2>&1 | tee "$OUT/smoke.log"
timeout ${PYTEST_TIMEOUT:-300} python3 -m pytest tests/gpu -q -rA --tb=short -p no:cacheprovider --durations=8 > "$OUT/pytest.log" 2>&1
echo "pytest exit $?"
grep -E "passed|failed|error" "$OUT/pytest.log" | tail -3
grep -E "^(FAILED|ERROR)" "$OUT/pytest.log" | head -30
case "$BENCH" in
  quick) timeout 200 python3 bench/bench_attention.py --out "$OUT/bench" --quick 2>&1 | tail -25 ;;
  full) timeout 540 python3 bench/bench_attention.py --out "$OUT/bench" 2>&1 | tail -60 ;;
esac
