// Helpers shared by the JNI sources of libsparkinfer_cuda_graphs.so: finding the libtorch libraries that DJL
// has loaded into the process, looking up their functions, and raising Java exceptions.
#ifndef SPARKINFER_JNI_SUPPORT_H
#define SPARKINFER_JNI_SUPPORT_H

#include <jni.h>

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

namespace sparkinfer {

// The path of a library mapped into this process whose file name is `name`, or false.
inline bool find_mapped(const char* name, char* path, size_t size) {
  FILE* maps = fopen("/proc/self/maps", "r");
  if (maps == nullptr) {
    return false;
  }
  char line[4096];
  bool found = false;
  size_t name_len = strlen(name);
  while (!found && fgets(line, sizeof line, maps) != nullptr) {
    char* slash = strchr(line, '/');
    if (slash == nullptr) {
      continue;
    }
    slash[strcspn(slash, "\n")] = '\0';
    size_t len = strlen(slash);
    if (len > name_len && slash[len - name_len - 1] == '/' && strcmp(slash + len - name_len, name) == 0 &&
        len < size) {
      memcpy(path, slash, len + 1);
      found = true;
    }
  }
  fclose(maps);
  return found;
}

inline void* open_mapped(const char* name, char* error, size_t size) {
  char path[4096];
  if (!find_mapped(name, path, sizeof path)) {
    snprintf(error, size, "%s is not loaded in this process (a CPU-only libtorch?)", name);
    return nullptr;
  }
  void* handle = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) {
    snprintf(error, size, "cannot open %s: %s", path, dlerror());
  }
  return handle;
}

template <typename F>
bool lookup(void* lib, const char* symbol, F* out, char* error, size_t size) {
  *out = reinterpret_cast<F>(dlsym(lib, symbol));
  if (*out == nullptr) {
    snprintf(error, size, "libtorch has no %s (DJL's libtorch is not 2.5.x?)", symbol);
    return false;
  }
  return true;
}

// A native pointer as the long Java keeps for it, and back.
inline jlong handle_of(void* pointer) {
  return static_cast<jlong>(reinterpret_cast<intptr_t>(pointer));
}

inline void* pointer_of(jlong handle) {
  return reinterpret_cast<void*>(static_cast<intptr_t>(handle));
}

inline void throw_java(JNIEnv* env, const char* message) {
  jclass type = env->FindClass("java/lang/RuntimeException");
  if (type != nullptr) {
    env->ThrowNew(type, message);
  }
}

}  // namespace sparkinfer

#endif  // SPARKINFER_JNI_SUPPORT_H
