#!/usr/bin/env bash
# session 12, call K3 (Python only): the decode step as two halves on two streams
timeout 300 python3 bench/fused_step.py --plan .gpulib/plan/plan.json --overlap 256,512,2048 --positions 128,639 > $OUT/overlap.txt 2>&1
cat $OUT/overlap.txt | cut -c1-200 | tail -30
