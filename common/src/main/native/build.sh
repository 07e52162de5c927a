#!/usr/bin/env bash
# Builds the CUDA graphs and kernels JNI library (cuda_graphs.cpp, cuda_kernels.cpp) into OUT_DIR/native/linux-x86_64/, where
# io.sparkinfer.cuda.CudaGraphs finds it on the classpath. Maven runs this in generate-resources.
# Without g++ (or off linux-x86_64) it builds nothing and says so: the engine then runs without graphs.
# Usage: build.sh OUT_DIR [JAVA_HOME]
set -euo pipefail
out="${1:?usage: build.sh OUT_DIR [JAVA_HOME]}"
java_home="${2:-${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}}"
here="$(cd "$(dirname "$0")" && pwd)"
sources=("$here/cuda_graphs.cpp" "$here/cuda_kernels.cpp")
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "cuda graphs library: not built (only linux-x86_64 is supported)"
  exit 0
fi
if ! command -v g++ >/dev/null; then
  echo "cuda graphs library: not built (no g++; install it to use CUDA graphs on GPUs)"
  exit 0
fi
if [ ! -f "$java_home/include/jni.h" ]; then
  echo "cuda graphs library: not built (no jni.h under $java_home/include)"
  exit 0
fi
lib="$out/native/linux-x86_64/libsparkinfer_cuda_graphs.so"
mkdir -p "$(dirname "$lib")"
if [ -f "$lib" ] && [ -z "$(find "$here" -newer "$lib" -type f)" ]; then
  exit 0
fi
g++ -std=c++17 -O2 -fPIC -shared -Wall -Wextra -Werror \
  -I"$java_home/include" -I"$java_home/include/linux" "${sources[@]}" -o "$lib" -ldl
echo "cuda graphs library: built $lib"
