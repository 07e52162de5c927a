#!/usr/bin/env bash
# session 12, call K1 (Python only): where fp16 time goes at the job's sizes: the decode step at 4,096 rows, the
# fp16 prefill kernels at a 32,768-token line, the step's matmuls at 4,096 and 32,768 rows
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
timeout 200 python3 bench/fused_step.py --plan .gpulib/plan/plan.json --batch-sizes 4096 --positions 128,639 > $OUT/step4096.txt 2>&1
tail -22 $OUT/step4096.txt | cut -c1-160
timeout 120 python3 bench/prefill_kernels.py --plan .gpulib/plan/plan.json --dtype fp16 --tokens 32768 --iters 20 > $OUT/prefill-kernels-fp16.txt 2>&1
tail -30 $OUT/prefill-kernels-fp16.txt | cut -c1-180
timeout 120 python3 bench/gemm_shapes.py --batch 4096 --splits 2 > $OUT/gemm4096.txt 2>&1
grep -E "limit|step's|mm\(a, W.t\(\), out=\)|addmm_\(x, a, W.t\(\)\)" $OUT/gemm4096.txt | cut -c1-160
timeout 120 python3 bench/gemm_shapes.py --batch 32768 --splits 2 > $OUT/gemm32768.txt 2>&1
grep -E "limit|step's|mm\(a, W.t\(\), out=\)|addmm_\(x, a, W.t\(\)\)" $OUT/gemm32768.txt | cut -c1-160
