#!/usr/bin/env bash
# session 12, call E8: issue 13's table on the current code, one call: bench/gpu/e2e.sh with the fp16 job, generate.sh
# fp16 and fp8, the shared-prefix workload and decode at batch 256 (o1); then e2e.sh's job-only mode, the fp8 job (o2)
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
source .gpu/setup.sh > /dev/null
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
rm -rf /tmp/o1 /tmp/o2 && mkdir -p /tmp/o1 /tmp/o2
OUT=/tmp/o1 E2E_PADDED=0 E2E_UNFUSED=0 E2E_PRECISIONS=fp8 timeout 440 bench/gpu/e2e.sh > /tmp/o1/e2e.out 2>&1
grep -E '"(job_e2e|job_wall|generate_e2e|generate_prefill_s|generate_decode_s|generate_auto|generate_fp8_e2e|fp8_e2e|engine_decode|prefix_cache|prefill_fraction|job_first|job_over|generate_process)' /tmp/o1/e2e.json
OUT=/tmp/o2 E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 E2E_JOB_PRECISION=fp8 \
  timeout 100 bench/gpu/e2e.sh > /tmp/o2/e2e.out 2>&1
grep -E '"(job_e2e|job_wall|job_first|job_generate|job_precision|generate_e2e)' /tmp/o2/e2e.json
for d in /tmp/o1 /tmp/o2; do
  for f in $d/*.log; do grep -vE "INFO org\.apache\.|^\s*launch|PtEngine|^SLF4J" $f > $f.tmp && mv $f.tmp $f; done
done
tar czf $OUT/e8.tgz -C /tmp o1 o2
