#!/usr/bin/env bash
# session 20, call 2: under --cublas 12.6.3, the fp8 job (main) against PromptPlanner.BLOCK 512, two rounds, with
# generate.sh fp8; then the fp16 job once with generate.sh fp16; then bench/triton_shapes.py
source .gpu/setup.sh >/dev/null
mkdir -p "$OUT"
C=$PWD/.gpulib/jobs-classes
export BENCH_CUBLAS=/tmp/cb/c126
ALT_NAME=b512 ALT_ROUNDS=2 ALT_WARM=0 ALT_WORK=/tmp/b512 timeout 300 bench/gpu/alternate.sh main=$C b512=${C}-b512
ALT_PRECISION=fp16 ALT_NAME=f16 ALT_ROUNDS=1 ALT_WARM=0 ALT_WORK=/tmp/f16 timeout 130 bench/gpu/alternate.sh main=$C
unset BENCH_CUBLAS
timeout 110 python3 bench/triton_shapes.py > $OUT/triton_shapes.jsonl 2> $OUT/triton_shapes.err
tail -20 $OUT/triton_shapes.jsonl
