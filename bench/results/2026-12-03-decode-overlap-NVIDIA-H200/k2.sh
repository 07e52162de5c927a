#!/usr/bin/env bash
# session 12, call K2 (Python only): the decode step at 2,048 rows; the fp16 prefill kernels at a 32,768-token line
timeout 200 python3 bench/fused_step.py --plan .gpulib/plan/plan.json --batch-sizes 2048 --positions 128,639 > $OUT/step2048.txt 2>&1
tail -22 $OUT/step2048.txt | cut -c1-160
timeout 120 python3 bench/prefill_kernels.py --plan .gpulib/plan/plan.json --dtype fp16 --tokens 32768 --iters 20 > $OUT/prefill-kernels-fp16.txt 2>&1
tail -30 $OUT/prefill-kernels-fp16.txt | cut -c1-180
