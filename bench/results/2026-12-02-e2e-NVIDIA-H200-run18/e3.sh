#!/usr/bin/env bash
# session 10, call E3 (same machine): the job in fp8 with generate.sh in fp16 and fp8 beside it, then the fp8 job again
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
source .gpu/setup.sh > /dev/null
rm -rf /tmp/events && mkdir -p /tmp/events
E2E_JOB_JAVA_OPTS="-Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file:/tmp/events -Dspark.eventLog.compress=false" \
E2E_JOB_PRECISION=fp8 E2E_PRECISIONS=fp8 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 timeout 300 bench/gpu/e2e.sh > /tmp/e2e.out 2>&1
echo e2e rc=$?
grep -E "job_precision|job_e2e|job_wall|generate_e2e|generate_fp8|first_inference|job_generate_s|prefill_s|decode_s|speedup|fraction|process|agreement|common_prefix" $OUT/e2e.json
grep -hE "done:" $OUT/generate*.log | cut -c1-250
python3 bench/spark_events.py /tmp/events/* > $OUT/job-timeline.txt 2>&1; head -12 $OUT/job-timeline.txt | cut -c1-120
mkdir -p /tmp/fp8b
OUT=/tmp/fp8b E2E_JOB_PRECISION=fp8 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 timeout 160 bench/gpu/e2e.sh > /tmp/e2e-fp8b.out 2>&1
echo e2e fp8 job again rc=$?
cp /tmp/fp8b/e2e.json $OUT/e2e-job-fp8-again.json; cp /tmp/fp8b/job.log $OUT/job-fp8-again.log
grep -E "job_e2e|job_wall|first_inference|job_generate_s|generate_e2e|process" $OUT/e2e-job-fp8-again.json
ls $OUT
