#!/usr/bin/env bash
# session 16, second call: the fp8 job alternated, head (fd79403) and cl (head + the SQL warm-up compiling the planning
# job's and the wave's code for the local executor's class loader too, the wave's over a cached plan as the run's, and
# conf/local.properties turning Spark's artifact isolation off: in both runs, as the conf is the tree's), with
# generate.sh fp8 once. Everything goes into $OUT/e19a.tgz, written again after every run.
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
mkdir -p /tmp/o19
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > /tmp/o19/gpu.txt
nproc >> /tmp/o19/gpu.txt; lscpu | grep "Model name" >> /tmp/o19/gpu.txt
bench_prompts /tmp/e2e-prompts.jsonl 8192 0 128 512 p
pack() { tar czf $OUT/e19a.tgz -C /tmp o19; }
job() {  # $1 label, $2 classes
  mkdir -p /tmp/o19/$1; rm -rf /tmp/ev; mkdir -p /tmp/ev
  OUT=/tmp/o19/$1 E2E_JOBS_CLASSES=$2 E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 \
    E2E_JOB_PRECISION=fp8 E2E_JOB_JAVA_OPTS="-Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file:/tmp/ev -Dspark.eventLog.compress=false" \
    timeout 120 bench/gpu/e2e.sh > /tmp/o19/$1/e2e.out 2>&1
  mkdir -p /tmp/o19/$1/ev && cp -r /tmp/ev/* /tmp/o19/$1/ev/
  python3 bench/spark_events.py $(ls -d /tmp/ev/* | tail -1) > /tmp/o19/$1/timeline.txt 2>&1
  grep -vE "INFO org\.apache\.|^\s*launch|PtEngine|^SLF4J" /tmp/o19/$1/job.log > /tmp/job.log.tmp; mv /tmp/job.log.tmp /tmp/o19/$1/job.log
  rm -f /tmp/o19/$1/generate*.log
  echo "$1: $(grep -hE 'throughput|wall time|timeline' /tmp/o19/$1/job.log | tr -s ' ' | tr '\n' ' ')"
  pack
}
job head-1 $PWD/.gpulib/jobs-classes-head
job cl-1 $PWD/.gpulib/jobs-classes-cl
mkdir -p /tmp/o19/generate; timeout 100 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true \
  -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/e2e-prompts.jsonl \
  --output /tmp/e2e-generate-fp8.jsonl --device gpu --precision fp8 --max-new-tokens 128 --ignore-eos \
  --progress-seconds 10 > /tmp/o19/generate/generate-fp8.log 2>&1; tail -1 /tmp/o19/generate/generate-fp8.log; pack
job cl-2 $PWD/.gpulib/jobs-classes-cl
job head-2 $PWD/.gpulib/jobs-classes-head
job cl-3 $PWD/.gpulib/jobs-classes-cl
job head-3 $PWD/.gpulib/jobs-classes-head
