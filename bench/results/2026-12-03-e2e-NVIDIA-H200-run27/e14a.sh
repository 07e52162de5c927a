#!/usr/bin/env bash
# session 14, call E14a: where the fp8 job's time goes before and around the generation, on an H200's host: the job
# twice with Spark's event log and temporary PROF timestamps (epoch ms), the first with a flight recording
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
nproc | tee -a $OUT/gpu.txt; lscpu | grep "Model name" | tee -a $OUT/gpu.txt
bench_prompts /tmp/e2e-prompts.jsonl 8192 0 128 512 p
job() {  # $1 label, $2 classes, $3 extra java opts
  mkdir -p /tmp/o8/$1; rm -rf /tmp/ev; mkdir -p /tmp/ev
  OUT=/tmp/o8/$1 E2E_JOBS_CLASSES=$2 E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 \
    E2E_JOB_PRECISION=fp8 E2E_JOB_JAVA_OPTS="-Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file:/tmp/ev -Dspark.eventLog.compress=false $3" \
    timeout 120 bench/gpu/e2e.sh > /tmp/o8/$1/e2e.out 2>&1
  cp -r /tmp/ev /tmp/o8/$1/ev
  python3 bench/spark_events.py $(ls -d /tmp/ev/* | tail -1) > /tmp/o8/$1/timeline.txt 2>&1
  echo "$1: process $(grep -h '"job_process_wall_s"' /tmp/o8/$1/e2e.json | tr -d ' ,') | $(grep -hE 'throughput|wall time|timeline' /tmp/o8/$1/job.log | tr -s ' ' | tr '\n' ' ')"
  cat /tmp/o8/$1/timeline.txt
}
job prof-jfr $PWD/.gpulib/jobs-classes-prof "-XX:StartFlightRecording=filename=/tmp/o8/job.jfr,settings=profile"
job prof-1 $PWD/.gpulib/jobs-classes-prof ""
job prof-2 $PWD/.gpulib/jobs-classes-prof ""
for f in $(find /tmp/o8 -name "*.log"); do grep -vE "INFO org\.apache\.|^\s*launch|PtEngine|^SLF4J" $f > $f.tmp; mv $f.tmp $f; done
mv /tmp/o8/job.jfr $OUT/ 2>/dev/null
tar czf $OUT/e14a.tgz -C /tmp o8
