#!/usr/bin/env bash
# prepared in session 15 for the next: the fp8 job alternated over three rounds (the middle one in reverse order) with
# the jobs' classes of
#   c90:  main at 90a3111 (run30's wavec: the summary as one pass, counted ranges, the wave's code compiled ahead)
#   head: main at fd79403 (c90, token ids as bytes, the run taking the job's model check made before Spark, and the
#         warm-up compiling the planning job's code)
# and generate.sh fp8 once as the reference in the same call. The class dirs are built (.gpulib/jobs-classes-{c90,head}).
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
nproc | tee -a $OUT/gpu.txt; lscpu | grep "Model name" | tee -a $OUT/gpu.txt
bench_prompts /tmp/e2e-prompts.jsonl 8192 0 128 512 p
job() {  # $1 label, $2 classes
  mkdir -p /tmp/o18/$1; rm -rf /tmp/ev; mkdir -p /tmp/ev
  OUT=/tmp/o18/$1 E2E_JOBS_CLASSES=$2 E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 \
    E2E_JOB_PRECISION=fp8 E2E_JOB_JAVA_OPTS="-Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file:/tmp/ev -Dspark.eventLog.compress=false" \
    timeout 120 bench/gpu/e2e.sh > /tmp/o18/$1/e2e.out 2>&1
  cp -r /tmp/ev /tmp/o18/$1/ev; python3 bench/spark_events.py $(ls -d /tmp/ev/* | tail -1) > /tmp/o18/$1/timeline.txt 2>&1
  echo "$1: $(grep -hE 'throughput|wall time|timeline' /tmp/o18/$1/job.log | tr -s ' ' | tr '\n' ' ')"
}
for round in 1 2 3; do
  order="c90 head"; [ $round = 2 ] && order="head c90"
  for v in $order; do job $v-$round $PWD/.gpulib/jobs-classes-$v; done
  [ $round = 1 ] && { mkdir -p /tmp/o18/generate; timeout 120 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true \
    -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/e2e-prompts.jsonl \
    --output /tmp/e2e-generate-fp8.jsonl --device gpu --precision fp8 --max-new-tokens 128 --ignore-eos \
    --progress-seconds 10 > /tmp/o18/generate/generate-fp8.log 2>&1; tail -1 /tmp/o18/generate/generate-fp8.log; }
done
for f in $(find /tmp/o18 -name "*.log"); do grep -vE "INFO org\.apache\.|^\s*launch|PtEngine|^SLF4J" $f > $f.tmp; mv $f.tmp $f; done
tar czf $OUT/e17a.tgz -C /tmp o18
