#!/usr/bin/env bash
# session 10, call T2: decode_attention_fp8 with two raw stages (and variants) against the widened cache, timed; the
# fresh-line prefill's kept keys; then every GPU test
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/kv-fp8.txt
for dt in bf16 fp16; do
  timeout 80 python3 bench/fused_step.py --plan .gpulib/plan/plan.json --dtype $dt --kv-fp8 1024 >> $OUT/kv-fp8.txt 2>&1
done
grep -E "H100|H200|MISMATCH|unlike|us per|variant|torch sum|Error|error" $OUT/kv-fp8.txt | cut -c1-200
TESTS_TIMEOUT=240 .gpulib/tests.sh > /dev/null 2>&1
echo tests rc=$?
grep -E "✘|tests (successful|failed|skipped|aborted)|Expecting|expected|but was|agreeing|identical|Test run finished" $OUT/tests.log | head -30
