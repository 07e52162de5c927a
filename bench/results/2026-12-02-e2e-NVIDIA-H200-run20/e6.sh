#!/usr/bin/env bash
# session 11, call E6 (a new machine): --batch-size auto up to 4,096 rows: the job in fp8 with generate.sh in fp16 and
# fp8 beside it, then the fp8 job again, then the fp16 job
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
source .gpu/setup.sh > /dev/null
rm -rf /tmp/events && mkdir -p /tmp/events
E2E_JOB_JAVA_OPTS="-Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file:/tmp/events -Dspark.eventLog.compress=false" \
E2E_JOB_PRECISION=fp8 E2E_PRECISIONS=fp8 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 timeout 330 bench/gpu/e2e.sh > /tmp/e2e.out 2>&1
echo e2e rc=$?
grep -E "job_precision|job_e2e|job_wall|generate_e2e|generate_fp8|generate_auto|first_inference|job_generate_s|job_batch|prefill_s|decode_s|speedup|fraction|process|agreement|common_prefix" $OUT/e2e.json
grep -hE "done:" $OUT/generate*.log | cut -c1-250
python3 bench/spark_events.py /tmp/events/* > $OUT/job-timeline.txt 2>&1; head -12 $OUT/job-timeline.txt | cut -c1-120
source bench/gpu/lib.sh
source submit/lib/spark.sh
for p in fp8 fp16; do
  rm -rf /tmp/e2e-out
  timeout 100 java "${SPARKINFER_JAVA_MODULE_OPTS[@]}" -Xmx24g -XX:MaxDirectMemorySize=64g \
    -Dai.djl.offline=true -Dlog4j2.configurationFile=$R/conf/log4j2.properties \
    -cp "$R/.gpulib/jobs-classes:/tmp/app/*:/tmp/sparkjars/*" org.apache.spark.deploy.SparkSubmit \
    --master "local[*]" --properties-file $R/conf/local.properties --conf spark.driver.memory=24g \
    --class io.sparkinfer.jobs.BatchInferenceJob spark-internal \
    --model $M --input /tmp/e2e-prompts.jsonl --output /tmp/e2e-out --device gpu --precision $p \
    --max-new-tokens 128 --ignore-eos --layout threads=1 --progress-seconds 10 2>&1 \
    | grep -v " WARN \|^\s*at \|^WARNING" > $OUT/job-$p-again.log
  echo "job $p again: $(grep -hE 'throughput|wall time|timeline' $OUT/job-$p-again.log | tr -s ' ' | tr '\n' ' ')"
done
rm -f $OUT/generate-bf16.log $OUT/generate-padded.log $OUT/generate-unfused.log
ls $OUT
