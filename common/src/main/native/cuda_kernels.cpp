// Our own CUDA kernels for the scripted backend (io.sparkinfer.cuda.CudaKernels): compiled at run time
// with NVRTC, loaded and launched with the CUDA driver API on libtorch's current stream, so that launches
// made during a CUDA graph capture become part of the graph.
//
// Nothing is linked at build time. NVRTC is the one in the libtorch directory DJL loaded (DJL's CUDA libtorch
// ships it for TorchScript's fuser), the driver is libcuda.so.1, and the two libtorch functions used are the
// C functions of its AOT-inductor shim (stable names): aoti_torch_get_data_ptr (a tensor's device address,
// from the at::Tensor* that DJL keeps as an NDArray's handle) and aoti_torch_get_current_cuda_stream.
#include <jni.h>

#include <dirent.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

#include "jni_support.h"

namespace {

using sparkinfer::lookup;
using sparkinfer::open_mapped;
using sparkinfer::handle_of;
using sparkinfer::pointer_of;
using sparkinfer::throw_java;

typedef int CUresult;  // CUDA_SUCCESS is 0
typedef int CUdevice;
typedef void* CUcontext;
typedef void* CUmodule;
typedef void* CUfunction;
typedef void* CUstream;
typedef int nvrtcResult;  // NVRTC_SUCCESS is 0
typedef void* nvrtcProgram;

const int kComputeCapabilityMajor = 75;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
const int kComputeCapabilityMinor = 76;

struct Driver {
  CUresult (*init)(unsigned flags);
  CUresult (*device_get)(CUdevice* device, int ordinal);
  CUresult (*device_attribute)(int* value, int attribute, CUdevice device);
  CUresult (*ctx_get_current)(CUcontext* context);
  CUresult (*ctx_set_current)(CUcontext context);
  CUresult (*primary_ctx_retain)(CUcontext* context, CUdevice device);
  CUresult (*module_load_data)(CUmodule* module, const void* image);
  CUresult (*module_unload)(CUmodule module);
  CUresult (*module_get_function)(CUfunction* function, CUmodule module, const char* name);
  CUresult (*launch_kernel)(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                            unsigned bz, unsigned shared_bytes, CUstream stream, void** params, void** extra);
  CUresult (*error_string)(CUresult error, const char** text);
};

struct Nvrtc {
  nvrtcResult (*create_program)(nvrtcProgram* program, const char* source, const char* name, int headers,
                                const char* const* header_sources, const char* const* header_names);
  nvrtcResult (*compile_program)(nvrtcProgram program, int options, const char* const* option_values);
  nvrtcResult (*log_size)(nvrtcProgram program, size_t* size);
  nvrtcResult (*log)(nvrtcProgram program, char* log);
  nvrtcResult (*cubin_size)(nvrtcProgram program, size_t* size);
  nvrtcResult (*cubin)(nvrtcProgram program, char* cubin);
  nvrtcResult (*destroy_program)(nvrtcProgram* program);
  const char* (*error_string)(nvrtcResult result);
  nvrtcResult (*version)(int* major, int* minor);
};

struct Shim {
  int (*data_ptr)(void* tensor, void** data);                   // aoti_torch_get_data_ptr
  int (*current_stream)(int32_t device, void** stream);         // aoti_torch_get_current_cuda_stream
};

Driver driver;
Nvrtc nvrtc;
Shim shim;
bool kernels_ready = false;
bool data_ptr_ready = false;

// The first library in `dir` whose name starts with `prefix` and holds ".so", containing `builtins` or not,
// dlopen()ed with `mode`; null if none opens.
void* open_in(const char* dir, const char* prefix, bool builtins, int mode) {
  DIR* listing = opendir(dir);
  if (listing == nullptr) {
    return nullptr;
  }
  void* handle = nullptr;
  for (struct dirent* entry = readdir(listing); entry != nullptr && handle == nullptr; entry = readdir(listing)) {
    const char* name = entry->d_name;
    if (strncmp(name, prefix, strlen(prefix)) == 0 && strstr(name, ".so") != nullptr &&
        (strstr(name, "builtins") != nullptr) == builtins) {
      handle = dlopen((std::string(dir) + "/" + name).c_str(), mode);
    }
  }
  closedir(listing);
  return handle;
}

// dlopen()s the NVRTC library next to libtorch_cuda.so (DJL's is named libnvrtc-<hash>.so.12), else the
// system's. NVRTC loads its builtins library by soname (libnvrtc-builtins.so.12.4) when it compiles; DJL's
// copy is named libnvrtc-builtins.so, so it is loaded first, globally, for that lookup to find it.
void* open_nvrtc(char* error, size_t size) {
  char path[4096];
  if (sparkinfer::find_mapped("libtorch_cuda.so", path, sizeof path)) {
    *strrchr(path, '/') = '\0';
    open_in(path, "libnvrtc", true, RTLD_NOW | RTLD_GLOBAL);
    void* handle = open_in(path, "libnvrtc", false, RTLD_NOW | RTLD_LOCAL);
    if (handle != nullptr) {
      return handle;
    }
  }
  for (const char* name : {"libnvrtc.so.12", "libnvrtc.so"}) {
    void* handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (handle != nullptr) {
      return handle;
    }
  }
  snprintf(error, size, "no NVRTC library next to libtorch_cuda.so or on the library path");
  return nullptr;
}

bool check_driver(JNIEnv* env, CUresult result, const char* what) {
  if (result == 0) {
    return true;
  }
  const char* text = nullptr;
  driver.error_string(result, &text);
  std::string message = std::string(what) + ": CUDA error " + std::to_string(result) + " (" +
                        (text != nullptr ? text : "unknown") + ")";
  throw_java(env, message.c_str());
  return false;
}

// Makes the device's primary context (the one libtorch's runtime calls use) current on this thread.
bool use_primary_context(JNIEnv* env, int device) {
  CUcontext current = nullptr;
  if (driver.ctx_get_current(&current) == 0 && current != nullptr) {
    return true;
  }
  CUdevice dev;
  CUcontext primary;
  return check_driver(env, driver.device_get(&dev, device), "cannot get the CUDA device") &&
         check_driver(env, driver.primary_ctx_retain(&primary, dev), "cannot retain the device's context") &&
         check_driver(env, driver.ctx_set_current(primary), "cannot make the device's context current");
}

}  // namespace

extern "C" {

// Looks up the driver, NVRTC and libtorch functions; returns null when kernels can be compiled and
// launched, else why not.
JNIEXPORT jstring JNICALL Java_io_sparkinfer_cuda_CudaKernels_init(JNIEnv* env, jclass) {
  if (kernels_ready) {
    return nullptr;
  }
  char error[1024] = {0};
  void* torch_cuda = open_mapped("libtorch_cuda.so", error, sizeof error);
  void* cuda = torch_cuda == nullptr ? nullptr : dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (torch_cuda != nullptr && cuda == nullptr) {
    snprintf(error, sizeof error, "cannot open the CUDA driver libcuda.so.1: %s", dlerror());
  }
  void* rtc = cuda == nullptr ? nullptr : open_nvrtc(error, sizeof error);
  bool ok = rtc != nullptr &&
      lookup(torch_cuda, "aoti_torch_get_current_cuda_stream", &shim.current_stream, error, sizeof error) &&
      lookup(cuda, "cuInit", &driver.init, error, sizeof error) &&
      lookup(cuda, "cuDeviceGet", &driver.device_get, error, sizeof error) &&
      lookup(cuda, "cuDeviceGetAttribute", &driver.device_attribute, error, sizeof error) &&
      lookup(cuda, "cuCtxGetCurrent", &driver.ctx_get_current, error, sizeof error) &&
      lookup(cuda, "cuCtxSetCurrent", &driver.ctx_set_current, error, sizeof error) &&
      lookup(cuda, "cuDevicePrimaryCtxRetain", &driver.primary_ctx_retain, error, sizeof error) &&
      lookup(cuda, "cuModuleLoadData", &driver.module_load_data, error, sizeof error) &&
      lookup(cuda, "cuModuleUnload", &driver.module_unload, error, sizeof error) &&
      lookup(cuda, "cuModuleGetFunction", &driver.module_get_function, error, sizeof error) &&
      lookup(cuda, "cuLaunchKernel", &driver.launch_kernel, error, sizeof error) &&
      lookup(cuda, "cuGetErrorString", &driver.error_string, error, sizeof error) &&
      lookup(rtc, "nvrtcCreateProgram", &nvrtc.create_program, error, sizeof error) &&
      lookup(rtc, "nvrtcCompileProgram", &nvrtc.compile_program, error, sizeof error) &&
      lookup(rtc, "nvrtcGetProgramLogSize", &nvrtc.log_size, error, sizeof error) &&
      lookup(rtc, "nvrtcGetProgramLog", &nvrtc.log, error, sizeof error) &&
      lookup(rtc, "nvrtcGetCUBINSize", &nvrtc.cubin_size, error, sizeof error) &&
      lookup(rtc, "nvrtcGetCUBIN", &nvrtc.cubin, error, sizeof error) &&
      lookup(rtc, "nvrtcDestroyProgram", &nvrtc.destroy_program, error, sizeof error) &&
      lookup(rtc, "nvrtcGetErrorString", &nvrtc.error_string, error, sizeof error) &&
      lookup(rtc, "nvrtcVersion", &nvrtc.version, error, sizeof error);
  if (!ok) {
    return env->NewStringUTF(error);
  }
  if (driver.init(0) != 0) {
    return env->NewStringUTF("the CUDA driver did not initialise");
  }
  kernels_ready = true;
  return nullptr;
}

// The device address of a tensor's first element, from DJL's handle (an at::Tensor*). Works for any
// device, so CPU tests can check it.
JNIEXPORT jlong JNICALL Java_io_sparkinfer_cuda_CudaKernels_dataPtr(JNIEnv* env, jclass, jlong tensor) {
  if (!data_ptr_ready) {
    char error[1024] = {0};
    void* torch_cpu = open_mapped("libtorch_cpu.so", error, sizeof error);
    if (torch_cpu == nullptr || !lookup(torch_cpu, "aoti_torch_get_data_ptr", &shim.data_ptr, error, sizeof error)) {
      throw_java(env, error);
      return 0;
    }
    data_ptr_ready = true;
  }
  void* data = nullptr;
  if (tensor == 0 || shim.data_ptr(pointer_of(tensor), &data) != 0) {
    throw_java(env, "cannot read the tensor's data pointer");
    return 0;
  }
  return handle_of(data);
}

// The device's architecture as NVRTC names it ("sm_90"); null with a Java exception when the driver cannot say.
JNIEXPORT jstring JNICALL Java_io_sparkinfer_cuda_CudaKernels_architecture(JNIEnv* env, jclass, jint device) {
  if (!kernels_ready) {
    throw_java(env, "CUDA kernels are not initialised");
    return nullptr;
  }
  CUdevice dev;
  int major = 0;
  int minor = 0;
  if (!check_driver(env, driver.device_get(&dev, device), "cannot get the CUDA device") ||
      !check_driver(env, driver.device_attribute(&major, kComputeCapabilityMajor, dev), "no compute capability") ||
      !check_driver(env, driver.device_attribute(&minor, kComputeCapabilityMinor, dev), "no compute capability")) {
    return nullptr;
  }
  return env->NewStringUTF(("sm_" + std::to_string(major) + std::to_string(minor)).c_str());
}

// NVRTC's version ("12.4"): what a compiled module depends on besides its source, options and architecture.
JNIEXPORT jstring JNICALL Java_io_sparkinfer_cuda_CudaKernels_compilerVersion(JNIEnv* env, jclass) {
  if (!kernels_ready) {
    throw_java(env, "CUDA kernels are not initialised");
    return nullptr;
  }
  int major = 0;
  int minor = 0;
  if (nvrtc.version(&major, &minor) != 0) {
    throw_java(env, "NVRTC gave no version");
    return nullptr;
  }
  return env->NewStringUTF((std::to_string(major) + "." + std::to_string(minor)).c_str());
}

// Compiles CUDA source with NVRTC for an architecture ("sm_90") and returns the CUBIN. Compile errors come back
// as a Java exception carrying NVRTC's log.
JNIEXPORT jbyteArray JNICALL Java_io_sparkinfer_cuda_CudaKernels_compile(JNIEnv* env, jclass, jstring source,
                                                                           jobjectArray options,
                                                                           jstring architecture) {
  if (!kernels_ready) {
    throw_java(env, "CUDA kernels are not initialised");
    return nullptr;
  }
  const char* arch = env->GetStringUTFChars(architecture, nullptr);
  std::vector<std::string> values = {std::string("--gpu-architecture=") + arch};
  env->ReleaseStringUTFChars(architecture, arch);
  jsize n = env->GetArrayLength(options);
  for (jsize i = 0; i < n; i++) {
    jstring option = static_cast<jstring>(env->GetObjectArrayElement(options, i));
    const char* chars = env->GetStringUTFChars(option, nullptr);
    values.emplace_back(chars);
    env->ReleaseStringUTFChars(option, chars);
    env->DeleteLocalRef(option);
  }
  std::vector<const char*> option_values;
  for (const std::string& v : values) {
    option_values.push_back(v.c_str());
  }
  const char* text = env->GetStringUTFChars(source, nullptr);
  nvrtcProgram program = nullptr;
  nvrtcResult created = nvrtc.create_program(&program, text, "decode_kernels.cu", 0, nullptr, nullptr);
  env->ReleaseStringUTFChars(source, text);
  if (created != 0) {
    throw_java(env, (std::string("NVRTC cannot create a program: ") + nvrtc.error_string(created)).c_str());
    return nullptr;
  }
  nvrtcResult compiled = nvrtc.compile_program(program, static_cast<int>(option_values.size()), option_values.data());
  if (compiled != 0) {
    size_t size = 0;
    nvrtc.log_size(program, &size);
    std::string log(size, '\0');
    nvrtc.log(program, &log[0]);
    nvrtc.destroy_program(&program);
    throw_java(env, (std::string("NVRTC cannot compile the kernels: ") + nvrtc.error_string(compiled) + "\n" +
                     log.c_str()).c_str());
    return nullptr;
  }
  size_t size = 0;
  nvrtc.cubin_size(program, &size);
  std::vector<char> cubin(size);
  nvrtcResult got = nvrtc.cubin(program, cubin.data());
  nvrtc.destroy_program(&program);
  if (got != 0 || size == 0 || size > 0x7fffffff) {
    throw_java(env, "NVRTC gave no CUBIN");
    return nullptr;
  }
  jbyteArray bytes = env->NewByteArray(static_cast<jsize>(size));
  if (bytes == nullptr) {
    return nullptr;  // OutOfMemoryError pending
  }
  env->SetByteArrayRegion(bytes, 0, static_cast<jsize>(size), reinterpret_cast<const jbyte*>(cubin.data()));
  return bytes;
}

// Loads a CUBIN (compile's, or a cached copy of it) on the device; returns the CUmodule. An image the driver
// cannot load (not a CUBIN, another architecture) comes back as a Java exception.
JNIEXPORT jlong JNICALL Java_io_sparkinfer_cuda_CudaKernels_load(JNIEnv* env, jclass, jbyteArray cubin, jint device) {
  if (!kernels_ready) {
    throw_java(env, "CUDA kernels are not initialised");
    return 0;
  }
  if (!use_primary_context(env, device)) {
    return 0;
  }
  jsize size = env->GetArrayLength(cubin);
  std::vector<char> image(static_cast<size_t>(size));
  env->GetByteArrayRegion(cubin, 0, size, reinterpret_cast<jbyte*>(image.data()));
  CUmodule module = nullptr;
  if (!check_driver(env, driver.module_load_data(&module, image.data()), "cannot load the compiled kernels")) {
    return 0;
  }
  return handle_of(module);
}

JNIEXPORT jlong JNICALL Java_io_sparkinfer_cuda_CudaKernels_function(JNIEnv* env, jclass, jlong module,
                                                                       jstring name) {
  const char* chars = env->GetStringUTFChars(name, nullptr);
  CUfunction function = nullptr;
  std::string what = std::string("no kernel ") + chars + " in the compiled module";
  CUresult result = driver.module_get_function(&function, pointer_of(module), chars);
  env->ReleaseStringUTFChars(name, chars);
  return check_driver(env, result, what.c_str()) ? handle_of(function) : 0;
}

JNIEXPORT void JNICALL Java_io_sparkinfer_cuda_CudaKernels_unload(JNIEnv* env, jclass, jlong module) {
  check_driver(env, driver.module_unload(pointer_of(module)), "cannot unload the kernels");
}

// Launches a kernel on libtorch's current stream of the device (so inside a capture it joins the graph).
// dims: grid x, y, z, block x, y, z; args: one 8-byte value per kernel parameter (addresses, long long, or
// a double's bits).
JNIEXPORT void JNICALL Java_io_sparkinfer_cuda_CudaKernels_launch(JNIEnv* env, jclass, jlong function, jint device,
                                                                    jintArray dims, jlongArray args) {
  if (!use_primary_context(env, device)) {
    return;
  }
  jint d[6];
  env->GetIntArrayRegion(dims, 0, 6, d);
  jsize n = env->GetArrayLength(args);
  std::vector<jlong> values(static_cast<size_t>(n));
  env->GetLongArrayRegion(args, 0, n, values.data());
  std::vector<void*> params(static_cast<size_t>(n));
  for (jsize i = 0; i < n; i++) {
    params[i] = &values[i];
  }
  void* stream = nullptr;
  if (shim.current_stream(device, &stream) != 0) {
    throw_java(env, "cannot get libtorch's current CUDA stream");
    return;
  }
  check_driver(env,
               driver.launch_kernel(pointer_of(function), d[0], d[1], d[2], d[3], d[4], d[5], 0, stream,
                                    params.data(), nullptr),
               "cannot launch a kernel");
}

}  // extern "C"
