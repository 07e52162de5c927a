#!/usr/bin/env bash
# session 12, call E9 (right after E8 and T4, same machine, warm page cache and kernel cache): the fp8 job, generate.sh
# fp8, the fp8 job again, the fp16 job, generate.sh fp16: the job against generate.sh in one call, alternated
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
job() {  # $1 precision, $2 label
  mkdir -p /tmp/o3/$2
  OUT=/tmp/o3/$2 E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 E2E_JOB_PRECISION=$1 \
    timeout 100 bench/gpu/e2e.sh > /tmp/o3/$2/e2e.out 2>&1
  echo "$2: $(grep -hE 'throughput|wall time|timeline' /tmp/o3/$2/job.log | tr -s ' ' | tr '\n' ' ')"
}
gen() {  # $1 precision
  timeout 100 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -cp "/tmp/app/*" \
    io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/e2e-prompts.jsonl --output /tmp/e2e-generate-$1.jsonl \
    --device gpu --precision $1 --max-new-tokens 128 --ignore-eos --progress-seconds 10 > /tmp/o3/generate-$1.log 2>&1
  echo "generate $1: $(grep -h 'generate: done' /tmp/o3/generate-$1.log)"
}
rm -rf /tmp/o3 && mkdir -p /tmp/o3
job fp8 job-fp8-1
gen fp8
job fp8 job-fp8-2
job fp16 job-fp16
gen fp16
for f in $(find /tmp/o3 -name "*.log"); do grep -vE "INFO org\.apache\.|^\s*launch|PtEngine|^SLF4J" $f > $f.tmp && mv $f.tmp $f; done
tar czf $OUT/e9.tgz -C /tmp o3
