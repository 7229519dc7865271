// The plugin's whole life on a GPU, in the order TensorRT drives it: parser fields -> createPlugin(kBUILD)
// -> type/shape/format queries -> configurePlugin -> getWorkspaceSize -> getFieldsToSerialize ->
// createPlugin(kRUNTIME) -> attachToContext -> onShapeChange -> enqueue on a non-default stream.
// Inputs: query, key, value and the optional attn_mask / key_lengths in the order given (the plugin tells
// them apart by type). The output goes to a file; the Python test compares it with the NumPy reference.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "driver.h"

namespace sage_test {
namespace {

size_t element_bytes(nvinfer1::DataType t) {
  switch (t) {
    case nvinfer1::DataType::kBOOL: return 1;
    case nvinfer1::DataType::kHALF:
    case nvinfer1::DataType::kBF16: return 2;
    case nvinfer1::DataType::kINT64: return 8;
    default: return 4;  // kFLOAT, kINT32
  }
}

size_t element_count(const std::vector<int64_t>& dims) {
  size_t n = 1;
  for (int64_t d : dims) n *= static_cast<size_t>(d);
  return n;
}

bool read_file(const std::string& path, size_t bytes, std::vector<unsigned char>& out) {
  std::ifstream in(path, std::ios::binary);
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return false;
  if (out.size() != bytes) {
    std::printf("FAIL %s has %zu bytes, expected %zu\n", path.c_str(), out.size(), bytes);
    return false;
  }
  return true;
}

// Device memory released on every exit path.
struct DeviceBuffer {
  void* ptr = nullptr;
  explicit DeviceBuffer(size_t bytes) {
    if (bytes && cudaMalloc(&ptr, bytes) != cudaSuccess) ptr = nullptr;
  }
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

bool cuda_ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::printf("FAIL %s: %s\n", what, cudaGetErrorString(e));
  return false;
}

bool step(bool ok, const char* what, const Harness& h) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) std::printf("     last logged error: %s\n", h.logger.last_error().c_str());
  return ok;
}

}  // namespace

int run_on_gpu(const Harness& h, const GpuRunOptions& o) {
  int devices = 0;
  const cudaError_t probe = cudaGetDeviceCount(&devices);
  if (probe != cudaSuccess || devices == 0) {
    std::printf("SKIP: no CUDA device (%s)\n", probe != cudaSuccess ? cudaGetErrorString(probe) : "0 devices");
    return 77;
  }
  const nvinfer1::DataType t = o.dtype;
  // Every input: query, key, value, then the optional ones.
  std::vector<const std::vector<int64_t>*> dims = {&o.query, &o.key, &o.value};
  std::vector<std::string> names = {"query", "key", "value"};
  std::vector<nvinfer1::DataType> in_types = {t, t, t};
  for (const ExtraInput& e : o.extras) {
    dims.push_back(&e.dims);
    names.push_back(e.name);
    in_types.push_back(e.type);
  }
  const auto n = static_cast<int32_t>(dims.size());
  std::vector<std::vector<unsigned char>> host(n);
  for (int32_t i = 0; i < n; ++i) {
    if (!read_file(o.dir + "/" + names[i] + ".bin", element_count(*dims[i]) * element_bytes(in_types[i]), host[i])) {
      return 1;
    }
  }
  std::printf("inputs:");
  for (int32_t i = 0; i < n; ++i) std::printf(" %s", names[i].c_str());
  std::printf("\n");

  // Build phase.
  PluginPtr built = h.create_from_node(o.attrs, "sage_gpu_node");
  if (!step(built != nullptr, "createPlugin(kBUILD) from parser fields", h)) return 1;
  auto* build = build_of(built.get());
  nvinfer1::DataType out_type[1] = {};
  if (!step(build->getOutputDataTypes(out_type, 1, in_types.data(), n) == 0 && out_type[0] == t, "getOutputDataTypes", h)) {
    return 1;
  }
  FakeExprBuilder eb;
  std::vector<nvinfer1::DimsExprs> in_exprs;
  for (int32_t i = 0; i < n; ++i) in_exprs.push_back(eb.dims(*dims[i]));
  nvinfer1::DimsExprs out_exprs[1]{};
  if (!step(build->getOutputShapes(in_exprs.data(), n, nullptr, 0, out_exprs, 1, eb) == 0, "getOutputShapes", h)) return 1;
  std::vector<nvinfer1::DynamicPluginTensorDesc> io;
  for (int32_t i = 0; i < n; ++i) io.push_back(dynamic_desc(in_types[i], make_dims(*dims[i])));
  io.push_back(dynamic_desc(t, make_dims(o.query)));
  bool formats = true;
  for (int32_t pos = 0; pos <= n; ++pos) formats = formats && build->supportsFormatCombination(pos, io.data(), n, 1);
  if (!step(formats, "supportsFormatCombination (linear; optional inputs by type)", h)) return 1;
  if (!step(build->configurePlugin(io.data(), n, io.data() + n, 1) == 0, "configurePlugin (cuda_can_implement)", h)) {
    return 1;
  }
  const size_t workspace_bytes = build->getWorkspaceSize(io.data(), n, io.data() + n, 1);
  std::printf("workspace_bytes=%zu\n", workspace_bytes);

  // Engine plan -> runtime: the plugin is rebuilt from its serialized fields and attached to a context.
  PluginPtr deserialized = h.deserialize(built.get(), "sage_gpu_node");
  built.reset();
  if (!step(deserialized != nullptr, "createPlugin(kRUNTIME) from serialized fields", h)) return 1;
  RecordingErrorRecorder recorder;
  FakeResourceContext context(&recorder);
  PluginPtr attached(runtime_of(deserialized.get())->attachToContext(&context));
  if (!step(attached != nullptr, "attachToContext", h)) return 1;
  auto* runtime = runtime_of(attached.get());

  const size_t out_bytes = element_count(o.query) * element_bytes(t);
  std::vector<std::unique_ptr<DeviceBuffer>> d_in;
  for (int32_t i = 0; i < n; ++i) d_in.push_back(std::make_unique<DeviceBuffer>(host[i].size()));
  DeviceBuffer d_out(out_bytes), d_out2(out_bytes), d_ws(workspace_bytes);
  for (int32_t i = 0; i < n; ++i) {
    if (!host[i].empty() && !d_in[i]->ptr) return !cuda_ok(cudaErrorMemoryAllocation, "cudaMalloc input");
    if (!host[i].empty() && !cuda_ok(cudaMemcpy(d_in[i]->ptr, host[i].data(), host[i].size(), cudaMemcpyHostToDevice),
                                     "copy input")) {
      return 1;
    }
  }
  if (out_bytes && (!d_out.ptr || !d_out2.ptr)) return !cuda_ok(cudaErrorMemoryAllocation, "cudaMalloc output");
  if (workspace_bytes && !d_ws.ptr) return !cuda_ok(cudaErrorMemoryAllocation, "cudaMalloc workspace");
  // All-ones bytes are NaN in float32, float16 and bfloat16: an element the kernel skips cannot pass.
  if (out_bytes && (!cuda_ok(cudaMemset(d_out.ptr, 0xFF, out_bytes), "poison output") ||
                    !cuda_ok(cudaMemset(d_out2.ptr, 0xFF, out_bytes), "poison output"))) {
    return 1;
  }
  // cudaMemset runs on the legacy default stream, which does not order work on a non-blocking stream.
  if (!cuda_ok(cudaDeviceSynchronize(), "buffer setup")) return 1;

  cudaStream_t stream = nullptr;
  if (!cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate")) return 1;
  std::vector<nvinfer1::PluginTensorDesc> in_desc;
  std::vector<const void*> inputs;
  for (int32_t i = 0; i < n; ++i) {
    in_desc.push_back(tensor_desc(in_types[i], make_dims(*dims[i])));
    inputs.push_back(d_in[i]->ptr);
  }
  nvinfer1::PluginTensorDesc out_desc[1] = {tensor_desc(t, make_dims(o.query))};
  void* outputs[1] = {d_out.ptr};
  void* outputs2[1] = {d_out2.ptr};
  bool ok = step(runtime->onShapeChange(in_desc.data(), n, out_desc, 1) == 0, "onShapeChange", h) &&
            step(runtime->enqueue(in_desc.data(), out_desc, inputs.data(), outputs, d_ws.ptr, stream) == 0, "enqueue", h) &&
            step(runtime->enqueue(in_desc.data(), out_desc, inputs.data(), outputs2, d_ws.ptr, stream) == 0,
                 "enqueue again", h) &&
            cuda_ok(cudaStreamSynchronize(stream), "kernel execution") && cuda_ok(cudaGetLastError(), "kernel launch");
  cudaStreamDestroy(stream);
  if (!ok) return 1;
  step(recorder.getNbErrors() == 0, "no error recorded on the context", h);

  std::vector<unsigned char> result(out_bytes), result2(out_bytes);
  if (out_bytes && (!cuda_ok(cudaMemcpy(result.data(), d_out.ptr, out_bytes, cudaMemcpyDeviceToHost), "copy output") ||
                    !cuda_ok(cudaMemcpy(result2.data(), d_out2.ptr, out_bytes, cudaMemcpyDeviceToHost), "copy output"))) {
    return 1;
  }
  if (!step(result == result2, "two enqueues give identical bits (no state carried between calls)", h)) return 1;
  std::ofstream(o.dir + "/output.bin", std::ios::binary).write(reinterpret_cast<const char*>(result.data()),
                                                               static_cast<std::streamsize>(result.size()));
  std::printf("ok   output written to %s/output.bin\n", o.dir.c_str());
  return recorder.getNbErrors() == 0 ? 0 : 1;
}

}  // namespace sage_test
