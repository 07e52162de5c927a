#!/usr/bin/env bash
# On the GPU machine: the job's start-up with Spark SQL's warm-up (spark.sparkinfer.sql-warm-up) in each given
# setting, in the given order, on bench/gpu/e2e.sh's 8,192 prompts with one new token each (start-up and prefill),
# fp16, each run with its Spark event log. Appends each run's summary lines and its timeline (bench/spark_events.py)
# to $OUT/warm-up-ab.txt. The first run on a fresh machine also compiles our kernels: put an extra one first.
#
#   bench/gpu/warm_up_ab.sh first-job first-job false first-job false     (bench/results/...-run16)
#
# Needs what bench/gpu/e2e.sh needs (the bundle, the Spark parts, the engine jars in /tmp/app, the job's classes in
# .gpulib/jobs-classes).
set -uo pipefail
source bench/gpu/lib.sh
bench_prompts /tmp/e2e-prompts.jsonl 8192 0 128 512 p
source submit/lib/spark.sh
for w in "$@"; do
  ev=/tmp/ev-$w-$RANDOM; mkdir -p $ev; rm -rf /tmp/ab-out
  timeout ${AB_TIMEOUT:-60} java "${SPARKINFER_JAVA_MODULE_OPTS[@]}" -Dspark.eventLog.enabled=true \
    -Dspark.eventLog.dir=file:$ev -Dspark.eventLog.compress=false -Dspark.sparkinfer.sql-warm-up=$w -Xmx24g \
    -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -Dlog4j2.configurationFile=$R/conf/log4j2.properties \
    -cp "$R/.gpulib/jobs-classes:/tmp/app/*:/tmp/sparkjars/*" org.apache.spark.deploy.SparkSubmit \
    --master "local[*]" --properties-file $R/conf/local.properties --conf spark.driver.memory=24g \
    --class io.sparkinfer.jobs.BatchInferenceJob spark-internal \
    --model $M --input /tmp/e2e-prompts.jsonl --output /tmp/ab-out --device gpu --precision fp16 \
    --max-new-tokens 1 --ignore-eos > /tmp/ab-$w.log 2>&1
  echo "warm-up $w rc=$?: $(grep -E '  wall time|  timeline' /tmp/ab-$w.log | cut -c1-120 | tr '\n' ' ')" \
    | tee -a $OUT/warm-up-ab.txt
  python3 bench/spark_events.py $ev/* | head -11 >> $OUT/warm-up-ab.txt 2>&1
  echo "--- warm-up $w above" >> $OUT/warm-up-ab.txt
done
