#!/usr/bin/env bash
# session 10, call T: every GPU test (the float8 cache's among them), then the float8 cache's kernels alone
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
TESTS_TIMEOUT=280 .gpulib/tests.sh > /dev/null 2>&1
echo tests rc=$?
grep -E "✘|tests (successful|failed|skipped|aborted)|Expecting|expected|but was|agreeing|identical|Test run finished" $OUT/tests.log | head -40
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/kv-fp8.txt
for dt in fp16 bf16; do
  timeout 60 python3 bench/fused_step.py --plan .gpulib/plan/plan.json --dtype $dt --kv-fp8 1024 >> $OUT/kv-fp8.txt 2>&1
done
grep -E "H100|H200|MISMATCH|unlike|decode_attention|torch sum" $OUT/kv-fp8.txt
