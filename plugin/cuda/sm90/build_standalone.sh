#!/usr/bin/env bash
# Builds libsage_sm90.so (the sm_90a path + its C API, host/sm90_c_api.h) with nvcc alone, for the GPU
# tests and benchmark of this path. Usage, from anywhere:
#   plugin/cuda/sm90/build_standalone.sh [OUT_DIR]        (default: <repo>/build/sm90)
# Environment: NVCC (default nvcc), SAGE_SM90_PTXAS_VERBOSE=1 for register/spill reports, JOBS,
# SAGE_SM90_DEFINES (extra -D flags for kernel experiments, e.g. "-DSAGE_SM90_PINGPONG").
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="${1:-$root/build/sm90}"
nvcc="${NVCC:-nvcc}"
jobs="${JOBS:-$(nproc)}"
mkdir -p "$out/gen" "$out/obj"
python3 "$root/plugin/cmake/gen_schema.py" "$root/sage_export/schema/sage_attention.toml" "$out/gen/op_schema.gen.h" >/dev/null
flags=(-O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -Xcompiler=-fPIC,-fvisibility=hidden
       -I"$root/plugin/include/sage" -I"$out/gen" -I"$here")
if [[ "${SAGE_SM90_PTXAS_VERBOSE:-0}" == 1 ]]; then flags+=(-Xptxas=-v); fi
# shellcheck disable=SC2206
if [[ -n "${SAGE_SM90_DEFINES:-}" ]]; then flags+=(${SAGE_SM90_DEFINES}); fi
# The key-validity pass of bool key-padding masks is shared with the portable path (in CMake it comes with
# sage_cuda, see sources.cmake).
srcs=("$here"/host/*.cpp "$here"/kernels/*.cu "$root"/plugin/cuda/preprocess/key_validity.cu)
printf '%s\n' "${srcs[@]}" | xargs -P "$jobs" -I{} sh -c \
  'f="{}"; o="'"$out"'/obj/$(basename "$f").o"; '"$nvcc"' '"${flags[*]}"' -c "$f" -o "$o"'
"$nvcc" -shared -gencode=arch=compute_90a,code=sm_90a "$out"/obj/*.o -o "$out/libsage_sm90.so" -lcudart_static
echo "built $out/libsage_sm90.so"
