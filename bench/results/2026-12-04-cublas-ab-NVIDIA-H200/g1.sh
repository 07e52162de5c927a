#!/usr/bin/env bash
# session 20, call 1: --cublas as built (hard-linked overlay) against bundled, bench/gpu/cublas_ab.sh
source .gpu/setup.sh >/dev/null
mkdir -p "$OUT"
CUBLAS_AB_DIR=/tmp/cb/c126 timeout 575 bench/gpu/cublas_ab.sh
