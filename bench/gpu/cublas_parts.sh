#!/usr/bin/env bash
# Prepares cuBLAS 12.6.3 for the GPU machine, for runs with --cublas (README, "cuBLAS"): its two libraries from
# org.bytedeco:cuda:12.6-9.5-1.5.11:linux-x86_64-redist (2 GB, Maven Central), their code for other GPU
# architectures zeroed out (../shared/gpu/prune_fatbin.py, as the bundle's libtorch), packed and cut into parts of
# 32 MiB under .gpu/b00, .gpu/b01, ... (git-ignored; about 180 MB in 6 parts).
#
# usage: bench/gpu/cublas_parts.sh [ARCH]     (default 90: H100, H200)
# Send each part as the bundle's: run(command="mkdir -p /tmp/cb && cp -r .gpu/bNN/* /tmp/cb/", carry=[".gpu/bNN"]);
# there, BENCH_CUBLAS=/tmp/cb/c126 before sourcing bench/gpu/lib.sh unpacks them and readies the runs (lib.sh).
set -euo pipefail
HOME_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ARCH=${1:-90}
CACHE=${GPU_BUNDLE_CACHE:-$HOME/.cache/gpu-bundle}
PACK=$CACHE/cublas-12.6.3-sm$ARCH.tar.zst
if [ ! -f "$PACK" ]; then
  mvn -q dependency:get -Dtransitive=false -Dartifact=org.bytedeco:cuda:12.6-9.5-1.5.11:jar:linux-x86_64-redist
  JAR=$HOME/.m2/repository/org/bytedeco/cuda/12.6-9.5-1.5.11/cuda-12.6-9.5-1.5.11-linux-x86_64-redist.jar
  WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
  (cd "$WORK" && unzip -q "$JAR" 'org/bytedeco/cuda/linux-x86_64/libcublas.so.12' 'org/bytedeco/cuda/linux-x86_64/libcublasLt.so.12')
  mkdir -p "$WORK/c126"
  for f in libcublas libcublasLt; do  # named as a toolkit names them, so that --cublas can tell the version
    python3 "$HOME_DIR/../shared/gpu/prune_fatbin.py" "$ARCH" "$WORK/org/bytedeco/cuda/linux-x86_64/$f.so.12" \
      "$WORK/c126/$f.so.12.6.3"
    ln -s "$f.so.12.6.3" "$WORK/c126/$f.so.12"
  done
  mkdir -p "$CACHE"
  tar -C "$WORK" -cf - c126 | zstd -q -T0 -15 --long=27 -o "$PACK.tmp" && mv "$PACK.tmp" "$PACK"
fi
rm -rf "$HOME_DIR"/.gpu/b[0-9][0-9]
SPLIT=$(mktemp -d)
split -b 32m -d "$PACK" "$SPLIT/part."
for c in "$SPLIT"/part.*; do n=${c##*.}; mkdir -p "$HOME_DIR/.gpu/b$n"; mv "$c" "$HOME_DIR/.gpu/b$n/"; done
rmdir "$SPLIT"
echo "cuBLAS 12.6.3 in $(ls -d "$HOME_DIR"/.gpu/b[0-9][0-9] | wc -l) parts: .gpu/b00 ..."
