#!/usr/bin/env bash
# session 11, call E4 (same machine as T3): the job in fp8 with generate.sh in fp16 and fp8 beside it (decode_attention_fp8
# with sm_89's e4m3 conversion), then the fp8 job again with --batch-size 2048
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
source .gpu/setup.sh > /dev/null
rm -rf /tmp/events && mkdir -p /tmp/events
E2E_JOB_JAVA_OPTS="-Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file:/tmp/events -Dspark.eventLog.compress=false" \
E2E_JOB_PRECISION=fp8 E2E_PRECISIONS=fp8 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 timeout 300 bench/gpu/e2e.sh > /tmp/e2e.out 2>&1
echo e2e rc=$?
grep -E "job_precision|job_e2e|job_wall|generate_e2e|generate_fp8|first_inference|job_generate_s|prefill_s|decode_s|speedup|fraction|process|agreement|common_prefix" $OUT/e2e.json
grep -hE "done:" $OUT/generate*.log | cut -c1-250
python3 bench/spark_events.py /tmp/events/* > $OUT/job-timeline.txt 2>&1; head -12 $OUT/job-timeline.txt | cut -c1-120
mkdir -p /tmp/b2048
OUT=/tmp/b2048 E2E_JOB_OPTIONS="--batch-size 2048" E2E_JOB_PRECISION=fp8 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 timeout 170 bench/gpu/e2e.sh > /tmp/e2e-b2048.out 2>&1
echo e2e fp8 job batch 2048 rc=$?
cp /tmp/b2048/e2e.json $OUT/e2e-job-fp8-b2048.json; cp /tmp/b2048/job.log $OUT/job-fp8-b2048.log
grep -E "job_e2e|job_wall|first_inference|job_generate_s|job_batch|generate_e2e|process" $OUT/e2e-job-fp8-b2048.json
rm -f $OUT/generate-bf16.log
ls $OUT
