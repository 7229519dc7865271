#!/usr/bin/env bash
# trtexec command lines for a model with SageAttention nodes (not runnable in the development container:
# it has no TensorRT). Usage: trtexec.sh MODEL.onnx [PLUGIN.so]
set -euo pipefail
MODEL=${1:?usage: trtexec.sh MODEL.onnx [libsage_attention_trt.so]}
PLUGIN=${2:-$(python3 -c 'from sage_export import trt_library_path; print(trt_library_path())')}
SHAPES=(--minShapes=query:1x8x128x128,key:1x8x128x128,value:1x8x128x128
        --optShapes=query:1x8x1024x128,key:1x8x1024x128,value:1x8x1024x128
        --maxShapes=query:1x8x4096x128,key:1x8x4096x128,value:1x8x4096x128)

# The library exports getCreators/setLoggerFinder and registers nothing when merely dlopened, so it is
# loaded with --dynamicPlugins (IPluginRegistry::loadLibrary). --staticPlugins (the old --plugins) only
# dlopens a library and would leave SageAttention unregistered.
# TensorRT 11: networks are always strongly typed; the model's own float16/bfloat16 types decide the precision.
trtexec --onnx="$MODEL" --dynamicPlugins="$PLUGIN" "${SHAPES[@]}" --saveEngine=sage.plan

# Mask inputs (attn_mask, key_lengths): add them to the three shape lists, e.g. attn_mask:1x128 ... attn_mask:1x4096,
# key_lengths:1. A SageAttention node with an empty input name (query, key, value, "", key_lengths) must be compacted
# first, since the parser hands that slot to the plugin as a null tensor (README.md, "Mask inputs"):
#   python3 compact_inputs.py "$MODEL" model_trt.onnx   # then --onnx=model_trt.onnx

# Running a saved plan also needs the library loaded into the runtime's registry.
trtexec --loadEngine=sage.plan --dynamicPlugins="$PLUGIN" --shapes=query:1x8x1024x128,key:1x8x1024x128,value:1x8x1024x128

# TensorRT 10.x, float32 model, letting the builder pick FP16 kernels (weakly typed network):
#   trtexec --onnx="$MODEL" --dynamicPlugins="$PLUGIN" --fp16 "${SHAPES[@]}" --saveEngine=sage.plan
# Version-compatible plan with the plugin embedded (trtexec adds parsed plugin libraries itself unless
# --excludeLeanRuntime; shown explicitly here):
#   trtexec --onnx="$MODEL" --dynamicPlugins="$PLUGIN" --versionCompatible --setPluginsToSerialize="$PLUGIN" "${SHAPES[@]}" --saveEngine=sage_vc.plan
