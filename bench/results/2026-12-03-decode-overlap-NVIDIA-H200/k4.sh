#!/usr/bin/env bash
# session 12, call K4 (Python only): decode_attention's variants (warps, stages, splits) at 256 and 2,048 rows
for b in 256 2048; do
  timeout 200 python3 bench/fused_step.py --plan .gpulib/plan/plan.json --attention-variants $b > $OUT/attention-variants-$b.txt 2>&1
  echo "batch $b"; cut -c1-170 $OUT/attention-variants-$b.txt
done
