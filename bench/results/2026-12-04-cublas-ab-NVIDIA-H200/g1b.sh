#!/usr/bin/env bash
source .gpu/setup.sh >/dev/null
mkdir -p "$OUT"
CUBLAS_AB_DIR=/tmp/cb/c126 CUBLAS_AB_DEC=0 CUBLAS_AB_JOB=0 CUBLAS_AB_SHAPES=0 timeout 420 bench/gpu/cublas_ab.sh
