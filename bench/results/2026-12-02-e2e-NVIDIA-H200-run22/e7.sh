#!/usr/bin/env bash
# session 11, call E7 (a new machine): the fp8 job alone three times (the planning summary without adaptive query
# execution: one Spark job instead of four), Spark's event log of the last
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
source bench/gpu/lib.sh
source submit/lib/spark.sh
bench_prompts /tmp/e2e-prompts.jsonl 8192 0 128 512 p
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
for i in 1 2; do
  rm -rf /tmp/e2e-out /tmp/events && mkdir -p /tmp/events
  timeout 100 java "${SPARKINFER_JAVA_MODULE_OPTS[@]}" -Xmx24g -XX:MaxDirectMemorySize=64g \
    -Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file:/tmp/events -Dspark.eventLog.compress=false \
    -Dai.djl.offline=true -Dlog4j2.configurationFile=$R/conf/log4j2.properties \
    -cp "$R/.gpulib/jobs-classes:/tmp/app/*:/tmp/sparkjars/*" org.apache.spark.deploy.SparkSubmit \
    --master "local[*]" --properties-file $R/conf/local.properties --conf spark.driver.memory=24g \
    --class io.sparkinfer.jobs.BatchInferenceJob spark-internal \
    --model $M --input /tmp/e2e-prompts.jsonl --output /tmp/e2e-out --device gpu --precision fp8 \
    --max-new-tokens 128 --ignore-eos --layout threads=1 --progress-seconds 10 2>&1 \
    | grep -v " WARN \|^\s*at \|^WARNING\|INFO org.apache.\|^\s*launch\|PtEngine\|^SLF4J" > $OUT/job-fp8-$i.log
  echo "job fp8 $i: $(grep -hE 'throughput|wall time|timeline|model  ' $OUT/job-fp8-$i.log | tr -s ' ' | tr '\n' ' ')"
  python3 bench/spark_events.py /tmp/events/* > $OUT/job-timeline-$i.txt 2>&1
done
cut -c1-120 $OUT/job-timeline-2.txt
