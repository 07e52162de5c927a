#!/usr/bin/env bash
# session 13, call E12: the job's driver with and without class-data sharing (E2E_JOB_CDS), alternated, fp8 and fp16,
# with generate.sh in each precision between them; Spark event logs for each job's timeline
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
# the bundle's jlink'd JRE has no base CDS archive, which dynamic archives build on (a JDK ships one)
[ -f /tmp/g/jre/lib/server/classes.jsa ] || java -Xshare:dump > /dev/null 2>&1; ls -la /tmp/g/jre/lib/server/ | tee $OUT/jre-server.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
nproc | tee -a $OUT/gpu.txt; lscpu | grep "Model name" | tee -a $OUT/gpu.txt
bench_prompts /tmp/e2e-prompts.jsonl 8192 0 128 512 p
head -64 /tmp/e2e-prompts.jsonl > /tmp/warm.jsonl
timeout 100 java -Dai.djl.offline=true -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/warm.jsonl \
  --output /tmp/warm-out.jsonl --device gpu --precision fp16 --max-new-tokens 8 > /tmp/warm.log 2>&1; tail -1 /tmp/warm.log
mkdir -p /tmp/o5
job() {  # $1 precision, $2 label, $3 cds 0|1
  mkdir -p /tmp/o5/$2 /tmp/events-$2
  local t0=$(date +%s.%N)
  OUT=/tmp/o5/$2 E2E_JOB_CDS=$3 E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 \
    E2E_JOB_PRECISION=$1 E2E_JOB_JAVA_OPTS="-Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file:/tmp/events-$2 -Dspark.eventLog.compress=false" \
    timeout 150 bench/gpu/e2e.sh > /tmp/o5/$2/e2e.out 2>&1
  local t1=$(date +%s.%N)
  python3 bench/spark_events.py $(ls -d /tmp/events-$2/* | tail -1) > /tmp/o5/$2/timeline.txt 2>&1
  echo "$2: e2e.sh $(python3 -c "print(round($t1-$t0,1))") s | $(grep -h 'class-data sharing' /tmp/o5/$2/e2e.out | cut -c1-60) | $(grep -hE 'throughput|wall time|timeline' /tmp/o5/$2/job.log | tr -s ' ' | tr '\n' ' ')"
}
gen() {  # $1 precision
  local t0=$(date +%s.%N)
  timeout 100 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -cp "/tmp/app/*" \
    io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/e2e-prompts.jsonl --output /tmp/e2e-generate-$1.jsonl \
    --device gpu --precision $1 --max-new-tokens 128 --ignore-eos --progress-seconds 10 > /tmp/o5/generate-$1.log 2>&1
  local t1=$(date +%s.%N)
  echo "generate $1: process $(python3 -c "print(round($t1-$t0,1))") s | $(grep -h 'generate: done' /tmp/o5/generate-$1.log | sed 's/ -> .*//')"
}
job fp8 fp8-plain-1 0
job fp8 fp8-cds-1 1
gen fp8
job fp8 fp8-plain-2 0
job fp8 fp8-cds-2 1
job fp16 fp16-cds-1 1
gen fp16
job fp16 fp16-plain-1 0
job fp16 fp16-cds-2 1
for f in $(find /tmp/o5 -name "*.log"); do grep -vE "INFO org\.apache\.|^\s*launch|PtEngine|^SLF4J" $f > $f.tmp; mv $f.tmp $f; done
tar czf $OUT/e12.tgz -C /tmp o5
