#!/usr/bin/env bash
# session 13, call E13a: issue 13's table as a user runs the job now (class-data sharing on, E2E_JOB_CDS's default):
# the fp8 job, generate.sh fp16 and fp8, the shared-prefix workload, decode at batch 256, in one call
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
nproc | tee -a $OUT/gpu.txt; lscpu | grep "Model name" | tee -a $OUT/gpu.txt
bench_prompts /tmp/e2e-prompts.jsonl 8192 0 128 512 p
head -64 /tmp/e2e-prompts.jsonl > /tmp/warm.jsonl
timeout 100 java -Dai.djl.offline=true -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/warm.jsonl \
  --output /tmp/warm-out.jsonl --device gpu --precision fp16 --max-new-tokens 8 > /tmp/warm.log 2>&1; tail -1 /tmp/warm.log
mkdir -p /tmp/o6/fp8
OUT=/tmp/o6/fp8 E2E_JOB_PRECISION=fp8 E2E_PRECISIONS=fp8 E2E_PADDED=0 E2E_UNFUSED=0 timeout 480 bench/gpu/e2e.sh \
  > /tmp/o6/fp8/e2e.out 2>&1
grep -E '"(job_e2e|job_wall|job_process|generate_e2e|generate_prefill_s|generate_decode_s|generate_auto|generate_fp8_e2e|generate_fp8_prefill|fp8_e2e|engine_decode_tokens_per_s_b256"|prefix_cache|prefill_fraction|job_first|job_over|generate_process|job_generate_s)' /tmp/o6/fp8/e2e.json
grep -h "class-data sharing" /tmp/o6/fp8/e2e.out
for f in $(find /tmp/o6 -name "*.log"); do grep -vE "INFO org\.apache\.|^\s*launch|PtEngine|^SLF4J" $f > $f.tmp; mv $f.tmp $f; done
tar czf $OUT/e13a.tgz -C /tmp o6
