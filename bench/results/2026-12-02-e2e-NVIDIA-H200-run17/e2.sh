#!/usr/bin/env bash
# session 10, call E2 (same machine): the job in fp8 (float8 cache) with generate.sh fp16 beside it; generate.sh in fp8
# with the model-dtype cache (what the float8 cache alone gives) and in fp16 with a float8 cache; the fp16 job with a
# float8 cache
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
source .gpu/setup.sh > /dev/null
mkdir -p /tmp/fp8job
OUT=/tmp/fp8job E2E_JOB_PRECISION=fp8 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 timeout 160 bench/gpu/e2e.sh > /tmp/e2e-fp8job.out 2>&1
echo e2e fp8 job rc=$?
cp /tmp/fp8job/e2e.json $OUT/e2e-job-fp8.json; cp /tmp/fp8job/job.log $OUT/job-fp8.log
grep -E "job_precision|job_e2e|job_wall|first_inference|job_generate_s|generate_e2e|process" $OUT/e2e-job-fp8.json
source bench/gpu/lib.sh
for run in "fp8 model" "fp16 fp8"; do
  set -- $run
  timeout 100 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -cp "/tmp/app/*" \
    io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/e2e-prompts.jsonl --output /tmp/gen-$1-$2.jsonl \
    --device gpu --precision $1 --kv-cache-dtype $2 --max-new-tokens 128 --ignore-eos --progress-seconds 10 \
    > /tmp/gen-$1-$2.log 2>&1
  echo "generate --precision $1 --kv-cache-dtype $2 rc=$?: $(grep -E 'done:' /tmp/gen-$1-$2.log | cut -c1-300)" | tee -a $OUT/generate-cache-ab.txt
done
mkdir -p /tmp/fp16kv8
OUT=/tmp/fp16kv8 E2E_JOB_OPTIONS="--kv-cache-dtype fp8" E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 \
  timeout 160 bench/gpu/e2e.sh > /tmp/e2e-fp16kv8.out 2>&1
echo e2e fp16 job float8 cache rc=$?
cp /tmp/fp16kv8/e2e.json $OUT/e2e-job-fp16-kv8.json
grep -E "job_options|job_e2e|job_wall|first_inference|generate_e2e|process" $OUT/e2e-job-fp16-kv8.json
ls $OUT
