#!/usr/bin/env bash
# session 15: the fp8 job, alternated, with the jobs' classes of
#   main:    main at ae301d7
#   sum:     the planning summary as one pass over the cached plan (no SQL aggregate)
#   ranges:  sum + the inference partitions cut from planning's count of the lengths (no range sampling job)
#   rjanino: ranges + SqlWarmUp compiling one small projection first (Janino's first compile)
# and generate.sh fp8 once as the reference in the same call
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
nproc | tee -a $OUT/gpu.txt; lscpu | grep "Model name" | tee -a $OUT/gpu.txt
bench_prompts /tmp/e2e-prompts.jsonl 8192 0 128 512 p
job() {  # $1 label, $2 classes
  mkdir -p /tmp/o16/$1; rm -rf /tmp/ev; mkdir -p /tmp/ev
  OUT=/tmp/o16/$1 E2E_JOBS_CLASSES=$2 E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 \
    E2E_JOB_PRECISION=fp8 E2E_JOB_JAVA_OPTS="-Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file:/tmp/ev -Dspark.eventLog.compress=false" \
    timeout 120 bench/gpu/e2e.sh > /tmp/o16/$1/e2e.out 2>&1
  cp -r /tmp/ev /tmp/o16/$1/ev; python3 bench/spark_events.py $(ls -d /tmp/ev/* | tail -1) > /tmp/o16/$1/timeline.txt 2>&1
  echo "$1: $(grep -hE 'throughput|wall time|timeline' /tmp/o16/$1/job.log | tr -s ' ' | tr '\n' ' ') | plan job: $(grep 'plan (token' /tmp/o16/$1/timeline.txt | cut -c1-22)"
}
for round in 1 2; do
  for v in main sum ranges rjanino; do job $v-$round $PWD/.gpulib/jobs-classes-$v; done
  [ $round = 2 ] || { mkdir -p /tmp/o16/generate; timeout 120 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true \
    -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/e2e-prompts.jsonl \
    --output /tmp/e2e-generate-fp8.jsonl --device gpu --precision fp8 --max-new-tokens 128 --ignore-eos \
    --progress-seconds 10 2>&1 | grep -v PROF > /tmp/o16/generate/generate-fp8.log; tail -1 /tmp/o16/generate/generate-fp8.log; }
done
for f in $(find /tmp/o16 -name "*.log"); do grep -vE "INFO org\.apache\.|^\s*launch|PtEngine|^SLF4J" $f > $f.tmp; mv $f.tmp $f; done
tar czf $OUT/e16a.tgz -C /tmp o16
