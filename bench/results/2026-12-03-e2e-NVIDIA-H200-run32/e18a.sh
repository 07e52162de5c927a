#!/usr/bin/env bash
# session 16: the fp8 job alternated over three rounds with the jobs' classes of
#   head:  main at fd79403
#   async: head + the input's line count run while the driver makes its Datasets (InputRead)
#   each:  async + planning tokenizing one prompt at a time on the task's thread (encode, not encodeAll)
# generate.sh fp8 once; TokenizerBench first; last, one diagnostic run of async with a flight recording and Spark's
# code generator logged with threads.
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
nproc | tee -a $OUT/gpu.txt; lscpu | grep "Model name" | tee -a $OUT/gpu.txt
bench_prompts /tmp/e2e-prompts.jsonl 8192 0 128 512 p
timeout 100 java -Dai.djl.offline=true -cp "/tmp/app/*" io.sparkinfer.bench.TokenizerBench $M /tmp/e2e-prompts.jsonl \
  1,4,16 > $OUT/tokenizer.jsonl 2> $OUT/tokenizer.err; cat $OUT/tokenizer.jsonl
job() {  # $1 label, $2 classes, $3 extra java opts
  mkdir -p $OUT/o/$1; rm -rf /tmp/ev; mkdir -p /tmp/ev
  OUT=$OUT/o/$1 E2E_JOBS_CLASSES=$2 E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 \
    E2E_JOB_PRECISION=fp8 E2E_JOB_JAVA_OPTS="-Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file:/tmp/ev -Dspark.eventLog.compress=false ${3:-}" \
    timeout 120 bench/gpu/e2e.sh > $OUT/o/$1/e2e.out 2>&1
  python3 bench/spark_events.py $(ls -d /tmp/ev/* | tail -1) > $OUT/o/$1/timeline.txt 2>&1
  python3 - $(ls /tmp/ev/*/events_* | tail -1) > $OUT/o/$1/tasks.txt 2>&1 <<'PY'
import json, sys
start = None
for l in open(sys.argv[1]):
    e = json.loads(l); t = e["Event"]
    if t == "SparkListenerApplicationStart": start = e["Timestamp"]
    if t == "SparkListenerTaskEnd" and e["Stage ID"] <= 3:
        ti = e["Task Info"]; m = e["Task Metrics"]
        print(e["Stage ID"], ti["Task ID"], "launch %.3f finish %.3f" % ((ti["Launch Time"] - start) / 1e3, (ti["Finish Time"] - start) / 1e3),
              "deser %d run %d cpu %.0f gc %d" % (m["Executor Deserialize Time"], m["Executor Run Time"], m["Executor CPU Time"] / 1e6, m["JVM GC Time"]))
PY
  grep -vE "INFO org\.apache\.|^\s*launch|PtEngine|^SLF4J" $OUT/o/$1/job.log > /tmp/job.log.tmp; mv /tmp/job.log.tmp $OUT/o/$1/job.log
  rm -f $OUT/o/$1/generate*.log
  echo "$1: $(grep -hE 'throughput|wall time|timeline' $OUT/o/$1/job.log | tr -s ' ' | tr '\n' ' ')"
}
for round in 1 2 3; do
  order="head async each"; [ $round = 2 ] && order="each async head"; [ $round = 3 ] && order="async head each"
  for v in $order; do job $v-$round $PWD/.gpulib/jobs-classes-$v; done
  [ $round = 1 ] && { mkdir -p $OUT/o/generate; timeout 120 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true \
    -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/e2e-prompts.jsonl \
    --output /tmp/e2e-generate-fp8.jsonl --device gpu --precision fp8 --max-new-tokens 128 --ignore-eos \
    --progress-seconds 10 > $OUT/o/generate/generate-fp8.log 2>&1; tail -1 $OUT/o/generate/generate-fp8.log; }
done
cp conf/log4j2.properties /tmp/log4j2.saved; cp .gpulib/log4j2-cg.properties conf/log4j2.properties
job diag-async $PWD/.gpulib/jobs-classes-async "-XX:StartFlightRecording=filename=$OUT/o/diag-async/job.jfr,settings=profile"
cp /tmp/log4j2.saved conf/log4j2.properties
grep -c CodeGenerator $OUT/o/diag-async/job.log
