#!/usr/bin/env bash
# The GPU machine's validation run (from the repository root): build everything for the local GPU (ORT op
# library with CUDA kernels, TensorRT plugin + its driver when headers are present), run every GPU test
# (portable kernels incl. compute-sanitizer memcheck, Hopper kernel, ORT CUDA EP, TensorRT plugin) and the
# benchmark. Logs go to $OUT.
#   bash .ci/gpu_validate.sh [bench-args...]
# SKIP_TESTS=1 / SKIP_BENCH=1 leave out a part (the build in $BUILD is incremental, so two calls on one machine
# can split the run under a per-call time limit).
# Needs onnxruntime-gpu importable (PYTHONPATH=/root/site after ../shared/tools/device-wheels) for the ORT tests,
# and .cache/ort_headers + .cache/trt_headers carried (the machine has no network).
set -uo pipefail
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
BUILD=${SAGE_GPU_BUILD:-/root/build}
arch=$(python3 -c "import torch; m, n = torch.cuda.get_device_capability(); print(f'{m}{n}' + ('a' if m == 9 else ''))")
trt=()
[ -f .cache/trt_headers/include/NvInfer.h ] && trt=(-DTENSORRT_INCLUDE_DIR="$PWD/.cache/trt_headers/include")
{ cmake -S . -B "$BUILD" -G Ninja -DONNXRUNTIME_INCLUDE_DIR="$PWD/.cache/ort_headers" "${trt[@]}" \
    -DSAGE_CUDA_ARCHS="${arch}-real" -DSAGE_SM90_C_LIBRARY=ON && cmake --build "$BUILD" -j16; } > "$OUT/build.log" 2>&1 ||
  { tail -40 "$OUT/build.log"; exit 1; }
export SAGE_ORT_LIBRARY="$BUILD/plugin/ort/libsage_attention_ort.so"
lib90=$(find "$BUILD" -name libsage_sm90.so | head -1)
[ -n "$lib90" ] && export SAGE_SM90_LIB="$lib90"
[ -f "$BUILD/plugin/trt/libsage_attention_trt.so" ] && export SAGE_TRT_LIBRARY="$BUILD/plugin/trt/libsage_attention_trt.so"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv | tee "$OUT/device.txt"
python3 -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())" | tee -a "$OUT/device.txt"
if [ -z "${SKIP_TESTS:-}" ]; then
  timeout ${PYTEST_TIMEOUT:-420} python3 -m pytest tests -q -rfEs --tb=short -p no:cacheprovider \
    --ignore=tests/passes --ignore=tests/test_ort_compat.py --durations=10 > "$OUT/pytest.log" 2>&1
  echo "pytest exit $?"
  grep -E "passed|failed" "$OUT/pytest.log" | tail -2
  grep -E "^(FAILED|ERROR)" "$OUT/pytest.log" | head -40
fi
if [ -z "${SKIP_BENCH:-}" ]; then
  timeout ${BENCH_TIMEOUT:-400} python3 bench/bench_attention.py --out "$OUT/bench" "$@" 2>&1 | tail -80
fi
