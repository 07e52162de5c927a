#!/usr/bin/env bash
# session 10, call 1: the float8 cache's kernels alone (Python, no Java)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/kv-fp8.txt
for dt in fp16 bf16; do
  for b in 256 1024; do
    timeout 100 python3 bench/fused_step.py --plan .gpulib/plan/plan.json --dtype $dt --kv-fp8 $b >> $OUT/kv-fp8.txt 2>&1
    echo "rc=$? ($dt $b)" >> $OUT/kv-fp8.txt
  done
done
cat $OUT/kv-fp8.txt
