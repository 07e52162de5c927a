// CUDA graphs for the scripted backend, through libtorch's own at::cuda::CUDAGraph.
//
// DJL exposes no CUDA graph or stream API, so this small JNI library calls the few libtorch functions that
// capture and replay a graph (the ones torch.cuda.CUDAGraph wraps in Python) and that give a thread its own
// CUDA stream. It links against nothing of libtorch at build time: the functions are looked up with dlsym
// in the libtorch_cuda.so and libc10_cuda.so that DJL has already loaded into the process, by their
// Itanium-mangled names in libtorch 2.5.1 (the version DESIGN.md pins). A missing symbol is reported
// by init(), and the Java side then runs without graphs.
//
// Every call into libtorch is wrapped: a C++ exception (c10::Error) becomes a Java RuntimeException
// instead of aborting the JVM.
#include <jni.h>

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <exception>

#include "jni_support.h"

namespace {

using sparkinfer::lookup;
using sparkinfer::open_mapped;
using sparkinfer::handle_of;
using sparkinfer::pointer_of;
using sparkinfer::throw_java;

// c10::cuda::CUDAStream held by value: c10::Stream { Device { int8 type, int8 index }, int64 id }. It is
// trivially copyable and 16 bytes, so the x86-64 ABI passes and returns it in two integer registers,
// exactly like this struct.
struct CudaStream {
  int64_t device;
  int64_t id;
};

// at::cuda::MempoolId_t: std::pair<unsigned long long, unsigned long long>, also two integer registers.
struct MempoolId {
  uint64_t first;
  uint64_t second;
};

// cudaStreamCaptureModeThreadLocal: a capture on one thread does not forbid CUDA calls on other threads
// (other decode threads keep running their own steps on their own streams).
const int kCaptureModeThreadLocal = 1;

// Bytes reserved for one at::cuda::CUDAGraph object; the 2.5.1 object is about 100 bytes.
const size_t kGraphObjectBytes = 4096;

struct Torch {
  CudaStream (*get_stream_from_pool)(bool high_priority, int8_t device);
  void (*set_current_stream)(CudaStream stream);
  void (*device_synchronize)();
  void (*graph_construct)(void* self);
  void (*graph_destruct)(void* self);
  void (*capture_begin)(void* self, MempoolId pool, int mode);
  void (*capture_end)(void* self);
  void (*replay)(void* self);
  MempoolId (*pool)(void* self);
};

Torch torch;
bool ready = false;

// Runs f, turning a C++ exception into a pending Java exception; returns whether f completed.
template <typename F>
bool guarded(JNIEnv* env, const char* what, F f) {
  if (!ready) {
    throw_java(env, "CUDA graphs are not initialised");
    return false;
  }
  try {
    f();
    return true;
  } catch (const std::exception& e) {
    size_t n = strlen(what) + strlen(e.what()) + 3;
    char* message = static_cast<char*>(malloc(n));
    if (message != nullptr) {
      snprintf(message, n, "%s: %s", what, e.what());
      throw_java(env, message);
      free(message);
    } else {
      throw_java(env, what);
    }
  } catch (...) {
    throw_java(env, what);
  }
  return false;
}

}  // namespace

extern "C" {

// Looks up every function; returns null when CUDA graphs can be used, else why not.
JNIEXPORT jstring JNICALL Java_io_sparkinfer_cuda_CudaGraphs_init(JNIEnv* env, jclass) {
  if (ready) {
    return nullptr;
  }
  char error[1024] = {0};
  void* c10_cuda = open_mapped("libc10_cuda.so", error, sizeof error);
  void* torch_cuda = c10_cuda == nullptr ? nullptr : open_mapped("libtorch_cuda.so", error, sizeof error);
  bool ok = torch_cuda != nullptr &&
      lookup(c10_cuda, "_ZN3c104cuda17getStreamFromPoolEba", &torch.get_stream_from_pool, error, sizeof error) &&
      lookup(c10_cuda, "_ZN3c104cuda20setCurrentCUDAStreamENS0_10CUDAStreamE", &torch.set_current_stream, error,
             sizeof error) &&
      lookup(c10_cuda, "_ZN3c104cuda18device_synchronizeEv", &torch.device_synchronize, error, sizeof error) &&
      lookup(torch_cuda, "_ZN2at4cuda9CUDAGraphC1Ev", &torch.graph_construct, error, sizeof error) &&
      lookup(torch_cuda, "_ZN2at4cuda9CUDAGraphD1Ev", &torch.graph_destruct, error, sizeof error) &&
      lookup(torch_cuda, "_ZN2at4cuda9CUDAGraph13capture_beginESt4pairIyyE21cudaStreamCaptureMode",
             &torch.capture_begin, error, sizeof error) &&
      lookup(torch_cuda, "_ZN2at4cuda9CUDAGraph11capture_endEv", &torch.capture_end, error, sizeof error) &&
      lookup(torch_cuda, "_ZN2at4cuda9CUDAGraph6replayEv", &torch.replay, error, sizeof error) &&
      lookup(torch_cuda, "_ZN2at4cuda9CUDAGraph4poolEv", &torch.pool, error, sizeof error);
  if (!ok) {
    return env->NewStringUTF(error);
  }
  ready = true;
  return nullptr;
}

// Waits for all work on the device, then makes a stream from libtorch's pool the calling thread's
// current stream: libtorch (and so DJL) enqueues this thread's work there from now on. Graphs cannot be
// captured on the legacy default stream, and threads on streams of their own overlap on the GPU.
JNIEXPORT void JNICALL Java_io_sparkinfer_cuda_CudaGraphs_useStreamFromPool(JNIEnv* env, jclass, jint device) {
  guarded(env, "cannot switch to a pooled CUDA stream", [&] {
    torch.device_synchronize();
    torch.set_current_stream(torch.get_stream_from_pool(false, static_cast<int8_t>(device)));
  });
}

JNIEXPORT jlong JNICALL Java_io_sparkinfer_cuda_CudaGraphs_create(JNIEnv* env, jclass) {
  void* graph = calloc(1, kGraphObjectBytes);
  if (graph == nullptr) {
    throw_java(env, "out of host memory for a CUDA graph");
    return 0;
  }
  if (!guarded(env, "cannot create a CUDA graph", [&] { torch.graph_construct(graph); })) {
    free(graph);
    return 0;
  }
  return handle_of(graph);
}

// Starts capturing the calling thread's current stream; the graph allocates from memory pool `pool`
// (both zero: a pool of its own).
JNIEXPORT void JNICALL Java_io_sparkinfer_cuda_CudaGraphs_captureBegin(JNIEnv* env, jclass, jlong handle,
                                                                          jlong pool_first, jlong pool_second) {
  MempoolId pool = {static_cast<uint64_t>(pool_first), static_cast<uint64_t>(pool_second)};
  guarded(env, "cannot begin a CUDA graph capture",
          [&] { torch.capture_begin(pointer_of(handle), pool, kCaptureModeThreadLocal); });
}

JNIEXPORT void JNICALL Java_io_sparkinfer_cuda_CudaGraphs_captureEnd(JNIEnv* env, jclass, jlong handle) {
  guarded(env, "cannot end a CUDA graph capture", [&] { torch.capture_end(pointer_of(handle)); });
}

JNIEXPORT void JNICALL Java_io_sparkinfer_cuda_CudaGraphs_replay(JNIEnv* env, jclass, jlong handle) {
  guarded(env, "cannot replay a CUDA graph", [&] { torch.replay(pointer_of(handle)); });
}

// The graph's memory pool id as {first, second}, for capturing further graphs into the same pool.
JNIEXPORT jlongArray JNICALL Java_io_sparkinfer_cuda_CudaGraphs_pool(JNIEnv* env, jclass, jlong handle) {
  MempoolId id = {0, 0};
  if (!guarded(env, "cannot read a CUDA graph's pool", [&] { id = torch.pool(pointer_of(handle)); })) {
    return nullptr;
  }
  jlongArray out = env->NewLongArray(2);
  if (out != nullptr) {
    jlong values[2] = {static_cast<jlong>(id.first), static_cast<jlong>(id.second)};
    env->SetLongArrayRegion(out, 0, 2, values);
  }
  return out;
}

JNIEXPORT void JNICALL Java_io_sparkinfer_cuda_CudaGraphs_destroy(JNIEnv* env, jclass, jlong handle) {
  void* graph = pointer_of(handle);
  if (graph == nullptr) {
    return;
  }
  guarded(env, "cannot destroy a CUDA graph", [&] { torch.graph_destruct(graph); });
  free(graph);
}

}  // extern "C"
