#!/usr/bin/env bash
# session 10, call E1: the whole e2e workload with the float8 KV cache (fp8's default now): the fp16 job and generate.sh,
# generate.sh in fp8, the shared-prefix workload, decode at batch 256 with one replay's time
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
source .gpu/setup.sh > /dev/null
rm -rf /tmp/events && mkdir -p /tmp/events
E2E_JOB_JAVA_OPTS="-Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file:/tmp/events -Dspark.eventLog.compress=false" \
E2E_DECODE_OPTIONS=--graph-timing E2E_PADDED=0 E2E_UNFUSED=0 E2E_PRECISIONS=fp8 timeout 480 bench/gpu/e2e.sh > /tmp/e2e.out 2>&1
echo e2e rc=$?
grep -E "job_e2e|job_wall|generate_e2e|generate_fp8|generate_auto|b256|prefix_cache|first_inference|over_generate|prefill_s|decode_s|generate_s|speedup|fraction|process|agreement|common_prefix" $OUT/e2e.json
grep -hE "loaded|done:" $OUT/generate*.log | cut -c1-330
python3 bench/spark_events.py /tmp/events/* > $OUT/job-timeline.txt 2>&1; head -12 $OUT/job-timeline.txt
rm -f $OUT/generate-bf16.log $OUT/generate-padded.log $OUT/generate-unfused.log $OUT/bench256.log
ls $OUT
