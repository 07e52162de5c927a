#!/usr/bin/env bash
# session 14, call E14b: the fp8 job with planning's token ids carried to the inference tasks and no error-row tasks
# in a wave without errors (new) against main (old), alternated; once with PROF timestamps (epoch ms) and Spark's event
# log; generate.sh fp8 as the reference in the same call; then hash partitioning instead of the range's (no sampling
# job) alternated with new
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
nproc | tee -a $OUT/gpu.txt; lscpu | grep "Model name" | tee -a $OUT/gpu.txt
bench_prompts /tmp/e2e-prompts.jsonl 8192 0 128 512 p
job() {  # $1 label, $2 classes, $3 extra java opts
  mkdir -p /tmp/o9/$1; rm -rf /tmp/ev; mkdir -p /tmp/ev
  OUT=/tmp/o9/$1 E2E_JOBS_CLASSES=$2 E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 \
    E2E_JOB_PRECISION=fp8 E2E_JOB_JAVA_OPTS="$3" timeout 120 bench/gpu/e2e.sh > /tmp/o9/$1/e2e.out 2>&1
  [ -z "$3" ] || { cp -r /tmp/ev /tmp/o9/$1/ev; python3 bench/spark_events.py $(ls -d /tmp/ev/* | tail -1) > /tmp/o9/$1/timeline.txt 2>&1; }
  echo "$1: process $(grep -h '"job_process_wall_s"' /tmp/o9/$1/e2e.json | tr -d ' ,') | $(grep -hE 'throughput|wall time|timeline' /tmp/o9/$1/job.log | tr -s ' ' | tr '\n' ' ')"
}
EV="-Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file:/tmp/ev -Dspark.eventLog.compress=false"
job prof $PWD/.gpulib/jobs-classes-prof "$EV"
cat /tmp/o9/prof/timeline.txt
job old-1 $PWD/.gpulib/jobs-classes ""
job new-1 $PWD/.gpulib/jobs-classes-new ""
job hash-1 $PWD/.gpulib/jobs-classes-hash ""
mkdir -p /tmp/o9/generate
GENERATE_START=$(date +%s.%N)
timeout 120 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand \
  --model $M --input /tmp/e2e-prompts.jsonl --output /tmp/e2e-generate-fp8.jsonl --device gpu --precision fp8 \
  --max-new-tokens 128 --ignore-eos --progress-seconds 10 2>&1 | grep -v PROF > /tmp/o9/generate/generate-fp8.log
echo "generate fp8: process $(python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 1))" "$GENERATE_START") s | $(tail -3 /tmp/o9/generate/generate-fp8.log | tr '\n' ' ')"
job old-2 $PWD/.gpulib/jobs-classes ""
job new-2 $PWD/.gpulib/jobs-classes-new ""
job hash-2 $PWD/.gpulib/jobs-classes-hash ""
for f in $(find /tmp/o9 -name "*.log"); do grep -vE "INFO org\.apache\.|^\s*launch|PtEngine|^SLF4J" $f > $f.tmp; mv $f.tmp $f; done
tar czf $OUT/e14b.tgz -C /tmp o9
