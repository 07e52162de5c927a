#!/usr/bin/env bash
# session 11, call T3: the revised float8 case of FusedPrefillGpuTest first, then every GPU test, then the float8
# cache's kernels (hardware e4m3 conversion) in fp16 and bf16
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
TESTS_TIMEOUT=150 .gpulib/tests-one.sh > /dev/null 2>&1
echo prefill test rc=$?
grep -E "✘|✔|tests (successful|failed|skipped|aborted)|Expecting|expected|but was" $OUT/tests-one.log | head -20
TESTS_TIMEOUT=330 bench/gpu/tests.sh > /dev/null 2>&1
echo tests rc=$?
grep -E "✘|tests (successful|failed|skipped|aborted)|Expecting|expected|but was|agreeing|identical|Test run finished" $OUT/tests.log | head -30
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/kv-fp8.txt
for dt in fp16 bf16; do
  timeout 60 python3 bench/fused_step.py --plan .gpulib/plan/plan.json --dtype $dt --kv-fp8 1024 >> $OUT/kv-fp8.txt 2>&1
done
grep -E "H100|H200|MISMATCH|unlike|us per|variant|torch sum|Error|error" $OUT/kv-fp8.txt | cut -c1-200
