#!/usr/bin/env bash
# What a GPU session runs for the TensorRT plugin (from the repository root): configure the whole project with
# the TensorRT headers, build the plugin library and its test driver for the local GPU, run tests/trt.
# Logs go to $OUT (default ./gpu_out). No TensorRT library is needed: the driver plays TensorRT's part.
#   bash tests/trt/run_on_device.sh
# TensorRT headers: $SAGE_TRT_HEADERS, default .cache/trt_headers/include (git-ignored; carry it, and
# .cache/ort_headers, to the machine: it has no network).
set -uo pipefail
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
HEADERS=${SAGE_TRT_HEADERS:-$PWD/.cache/trt_headers/include}
BUILD=${SAGE_TRT_BUILD:-/root/build-trt}
if [ ! -f "$HEADERS/NvInferRuntime.h" ]; then
  echo "no TensorRT headers at $HEADERS (set SAGE_TRT_HEADERS)"; exit 1
fi
arch=$(python3 -c "import torch; m, n = torch.cuda.get_device_capability(); print(f'{m}{n}' + ('a' if m == 9 else ''))")
cmake -S . -B "$BUILD" -G Ninja -DTENSORRT_INCLUDE_DIR="$HEADERS" -DSAGE_CUDA_ARCHS="${arch}-real" > "$OUT/trt_build.log" 2>&1 &&
  cmake --build "$BUILD" -j16 --target sage_attention_trt sage_trt_plugin_test >> "$OUT/trt_build.log" 2>&1 ||
  { tail -40 "$OUT/trt_build.log"; exit 1; }
export SAGE_TRT_LIBRARY="$BUILD/plugin/trt/libsage_attention_trt.so"
nvidia-smi --query-gpu=name,driver_version --format=csv | tee "$OUT/device.txt"
timeout ${PYTEST_TIMEOUT:-300} python3 -m pytest tests/trt -v -rA --tb=short -p no:cacheprovider > "$OUT/trt_pytest.log" 2>&1
status=$?
echo "pytest exit $status"
grep -E "passed|failed|error" "$OUT/trt_pytest.log" | tail -3
grep -E "^(FAILED|ERROR|SKIPPED)" "$OUT/trt_pytest.log" | head -30
exit $status
