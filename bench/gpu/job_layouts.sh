#!/usr/bin/env bash
# On the GPU machine: the batch job on 4,096 prompts of 128-512 tokens (128 new, fp16, batch 256) with
# --layout threads=N for N in JOB_THREADS (default "1 2 1 2"), one after another; their job_runs to $OUT.
# Needs what bench/gpu/study.sh needs.
set -uo pipefail
source bench/gpu/lib.sh
bench_prompts /tmp/job-prompts.jsonl 4096 0 128 512 p
source submit/lib/spark.sh
CP="$R/.gpulib/jobs-classes:/tmp/app/*:/tmp/sparkjars/*"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
i=0
for t in ${JOB_THREADS:-1 2 1 2}; do
  i=$((i+1))
  timeout ${JOB_TIMEOUT:-110} java "${SPARKINFER_JAVA_MODULE_OPTS[@]}" -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true \
    -Dlog4j2.configurationFile=$R/conf/log4j2.properties -cp "$CP" org.apache.spark.deploy.SparkSubmit \
    --master 'local[1]' --properties-file $R/conf/local.properties --conf spark.driver.memory=24g \
    --class io.sparkinfer.jobs.BatchInferenceJob spark-internal \
    --model $M --input /tmp/job-prompts.jsonl --output /tmp/job-out/run$i --device gpu --precision fp16 \
    --batch-size 256 --max-new-tokens 128 --ignore-eos --layout threads=$t --progress-seconds 10 2>&1 \
    | grep -v " WARN \|^\s*at \|^WARNING" | tail -25 | tee -a $OUT/job.log
done
cd /tmp && tar -czf $OUT/job-runs.tgz job-out/*/_job_runs
