#!/usr/bin/env bash
# session 11, call E5 (same machine as E4, warm): the fp8 job alone at --batch-size 1024, 2048, 4096, 1024, 2048
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
source bench/gpu/lib.sh
source submit/lib/spark.sh
for bs in 1024 2048 4096 1024 2048; do
  rm -rf /tmp/e2e-out
  timeout 100 java "${SPARKINFER_JAVA_MODULE_OPTS[@]}" -Xmx24g -XX:MaxDirectMemorySize=64g \
    -Dai.djl.offline=true -Dlog4j2.configurationFile=$R/conf/log4j2.properties \
    -cp "$R/.gpulib/jobs-classes:/tmp/app/*:/tmp/sparkjars/*" org.apache.spark.deploy.SparkSubmit \
    --master "local[*]" --properties-file $R/conf/local.properties --conf spark.driver.memory=24g \
    --class io.sparkinfer.jobs.BatchInferenceJob spark-internal \
    --model $M --input /tmp/e2e-prompts.jsonl --output /tmp/e2e-out --device gpu --precision fp8 \
    --max-new-tokens 128 --ignore-eos --layout threads=1 --progress-seconds 10 --batch-size $bs 2>&1 \
    | grep -v " WARN \|^\s*at \|^WARNING" > $OUT/job-fp8-$bs-$SECONDS.log
  echo "batch $bs: $(grep -hE 'throughput|wall time|timeline' $OUT/job-fp8-$bs-*.log | tail -3 | tr -s ' ' | tr '\n' ' ')"
done
