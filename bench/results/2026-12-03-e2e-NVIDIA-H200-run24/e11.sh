#!/usr/bin/env bash
# session 12, call E11: the shared-prefix workload with the jar before (old) and after (new) prefill passes counted the
# tokens they run, alternated after a warm-up; then the fp8 job twice, generate.sh fp8, the fp16 job, generate.sh fp16
# (the jobs now sizing their first batch for the run's longest prompt)
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
source submit/lib/spark.sh
mkdir -p /tmp/app /tmp/app-old && cp .gpulib/appjar/*.jar /tmp/app/ && cp /tmp/app/*.jar /tmp/app-old/ \
  && cp .gpulib/appjar-old/*.jar /tmp/app-old/
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
bench_prompts /tmp/e2e-prompts.jsonl 8192 0 128 512 p
head -64 /tmp/e2e-prompts.jsonl > /tmp/warm.jsonl
timeout 100 java -Dai.djl.offline=true -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/warm.jsonl \
  --output /tmp/warm-out.jsonl --device gpu --precision fp16 --max-new-tokens 8 > /tmp/warm.log 2>&1; tail -1 /tmp/warm.log
mkdir -p /tmp/o4
for v in old new old new; do
  d=/tmp/app; [ $v = old ] && d=/tmp/app-old
  SPARKINFER_GENERATE="java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -cp $d/* io.sparkinfer.cli.GenerateCommand" \
    SP_VOCAB=151936 SP_PROMPTS=2048 timeout 120 bench/shared_prefix.sh --model $M --device gpu --precision fp16 \
    > /tmp/o4/shared-$v.log 2>&1
  echo "shared prefix, $v: $(grep -h 'generate: done' /tmp/o4/shared-$v.log | sed 's/.*tokens in/in/; s/ -> .*//' | tr '\n' ' ') $(tail -1 /tmp/o4/shared-$v.log)"
  cat /tmp/o4/shared-$v.log >> /tmp/o4/shared-all.log
done
job() {  # $1 precision, $2 label
  mkdir -p /tmp/o4/$2
  OUT=/tmp/o4/$2 E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 E2E_JOB_PRECISION=$1 \
    timeout 100 bench/gpu/e2e.sh > /tmp/o4/$2/e2e.out 2>&1
  echo "$2: $(grep -hE 'throughput|wall time|timeline|fit for prompts' /tmp/o4/$2/job.log | sed 's/^.*INFO Generator: //' | tr -s ' ' | tr '\n' ' ')"
}
gen() {  # $1 precision
  timeout 100 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -cp "/tmp/app/*" \
    io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/e2e-prompts.jsonl --output /tmp/e2e-generate-$1.jsonl \
    --device gpu --precision $1 --max-new-tokens 128 --ignore-eos --progress-seconds 10 > /tmp/o4/generate-$1.log 2>&1
  echo "generate $1: $(grep -h 'generate: done' /tmp/o4/generate-$1.log | sed 's/ -> .*//')"
}
job fp8 job-fp8-1
gen fp8

job fp16 job-fp16
gen fp16
for f in $(find /tmp/o4 -name "*.log"); do grep -vE "INFO org\.apache\.|^\s*launch|PtEngine|^SLF4J" $f > $f.tmp; mv $f.tmp $f; done
tar czf $OUT/e11.tgz -C /tmp o4
