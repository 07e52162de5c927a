#!/usr/bin/env bash
# session 11, call K1 (Python only, no bundle): decode_attention_fp8 with the hardware e4m3x2 conversion against the
# built one; the decode step's parts at batch 256; the step's matmuls with split-K variants at 256 and 1,024
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
timeout 150 python3 bench/fused_step.py --plan .gpulib/plan/plan.json --dtype fp16 --kv-fp8 1024 > $OUT/kv-fp8.txt 2>&1
grep -E "MISMATCH|unlike|us per|variant|torch sum|Error|error" $OUT/kv-fp8.txt | cut -c1-200
timeout 120 python3 bench/gemm_shapes.py --batch 256 > $OUT/gemm256.txt 2>&1
grep -E "limit|split-K 2 against|step's|Error" $OUT/gemm256.txt | cut -c1-160
grep -E "mm\(a, W.t\(\), out=\)|addmm_\(x, a, W.t\(\)\)|split-K" $OUT/gemm256.txt | cut -c1-160
timeout 120 python3 bench/gemm_shapes.py --batch 1024 > $OUT/gemm1024.txt 2>&1
grep -E "limit|step's|split-K|mm\(a, W.t\(\), out=\)|addmm_\(x, a, W.t\(\)\)" $OUT/gemm1024.txt | cut -c1-160
timeout 150 python3 bench/fused_step.py --plan .gpulib/plan/plan.json --batch-sizes 256 --positions 128,639 > $OUT/step256.txt 2>&1
tail -25 $OUT/step256.txt | cut -c1-200
