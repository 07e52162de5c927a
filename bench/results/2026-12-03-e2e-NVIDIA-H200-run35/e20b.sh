#!/usr/bin/env bash
# session 17, second call: the fp8 job alternated in three rounds: head (main, f8c5ee3), B (the SQL warm-up's setting
# read from the application's Spark conf: the run's session state no longer built before the line count) and C (B, and
# the run's session state built on a daemon thread from the run's start), with generate.sh fp8 once after the first
# round. Everything goes into $OUT/e20b.tgz,
# written again after every run.
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
mkdir -p /tmp/o21
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > /tmp/o21/gpu.txt
nproc >> /tmp/o21/gpu.txt; lscpu | grep "Model name" >> /tmp/o21/gpu.txt
bench_prompts /tmp/e2e-prompts.jsonl 8192 0 128 512 p
pack() { tar czf $OUT/e20b.tgz -C /tmp o21; }
job() {  # $1 label, $2 classes, $3 more JVM options
  mkdir -p /tmp/o21/$1; rm -rf /tmp/ev; mkdir -p /tmp/ev
  OUT=/tmp/o21/$1 E2E_JOBS_CLASSES=$2 E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 \
    E2E_JOB_PRECISION=fp8 E2E_JOB_JAVA_OPTS="-Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file:/tmp/ev -Dspark.eventLog.compress=false $3" \
    timeout 120 bench/gpu/e2e.sh > /tmp/o21/$1/e2e.out 2>&1
  mkdir -p /tmp/o21/$1/ev && cp -r /tmp/ev/* /tmp/o21/$1/ev/
  python3 bench/spark_events.py $(ls -d /tmp/ev/* | tail -1) > /tmp/o21/$1/timeline.txt 2>&1
  grep -vE "INFO org\.apache\.|^\s*launch|PtEngine|^SLF4J" /tmp/o21/$1/job.log > /tmp/job.log.tmp; mv /tmp/job.log.tmp /tmp/o21/$1/job.log
  rm -f /tmp/o21/$1/generate*.log
  echo "$1: $(grep -hE 'throughput|wall time|timeline' /tmp/o21/$1/job.log | tr -s ' ' | tr '\n' ' ')"
  pack
}
C=$PWD/.gpulib/jobs-classes
job head-1 ${C}-head ""
job B-1 ${C}-B ""
job C-1 ${C}-C ""
mkdir -p /tmp/o21/generate; timeout 100 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true \
  -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/e2e-prompts.jsonl \
  --output /tmp/e2e-generate-fp8.jsonl --device gpu --precision fp8 --max-new-tokens 128 --ignore-eos \
  --progress-seconds 10 > /tmp/o21/generate/generate-fp8.log 2>&1; tail -1 /tmp/o21/generate/generate-fp8.log; pack
job B-2 ${C}-B ""
job C-2 ${C}-C ""
job head-2 ${C}-head ""
job C-3 ${C}-C ""
job head-3 ${C}-head ""
job B-3 ${C}-B ""
job B-4 ${C}-B ""
job head-4 ${C}-head ""
job C-4 ${C}-C ""
