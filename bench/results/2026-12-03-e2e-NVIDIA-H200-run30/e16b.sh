#!/usr/bin/env bash
# session 15, second call: the fp8 job, alternated (the second round in reverse order), with the jobs' classes of
#   ranges:  the planning summary as one pass, and the inference partitions cut from its count of lengths (e16a)
#   conf:    ranges + SqlWarmUp reading its setting from the SparkContext's conf (the session's SQL state is made on
#            the warm-up thread, during the line count, not on the run's thread before it)
#   wavec:   ranges + SqlWarmUp also generating and compiling the wave's code (its query over made-up rows, toRdd)
#   both:    conf + wavec
#   nocg:    ranges run with -Dspark.sql.codegen.wholeStage=false -Dspark.sql.codegen.factoryMode=NO_CODEGEN (Spark SQL
#            interpreted: no Janino compile on the driver or in the tasks)
#   prof:    ranges with temporary PROF timestamps and Spark's code generation logged, once at the end
# and generate.sh fp8 once as the reference in the same call
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
nproc | tee -a $OUT/gpu.txt; lscpu | grep "Model name" | tee -a $OUT/gpu.txt
bench_prompts /tmp/e2e-prompts.jsonl 8192 0 128 512 p
job() {  # $1 label, $2 classes, $3 more JVM options
  mkdir -p /tmp/o17/$1; rm -rf /tmp/ev; mkdir -p /tmp/ev
  OUT=/tmp/o17/$1 E2E_JOBS_CLASSES=$2 E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 \
    E2E_JOB_PRECISION=fp8 E2E_JOB_JAVA_OPTS="-Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file:/tmp/ev -Dspark.eventLog.compress=false ${3:-}" \
    timeout 120 bench/gpu/e2e.sh > /tmp/o17/$1/e2e.out 2>&1
  cp -r /tmp/ev /tmp/o17/$1/ev; python3 bench/spark_events.py $(ls -d /tmp/ev/* | tail -1) > /tmp/o17/$1/timeline.txt 2>&1
  echo "$1: $(grep -hE 'throughput|wall time|timeline' /tmp/o17/$1/job.log | tr -s ' ' | tr '\n' ' ') | plan job: $(grep 'plan (token' /tmp/o17/$1/timeline.txt | cut -c1-22)"
}
for round in 1 2; do
  order="ranges conf wavec both nocg"; [ $round = 2 ] && order="nocg both wavec conf ranges"
  for v in $order; do
    if [ $v = nocg ]; then
      job $v-$round $PWD/.gpulib/jobs-classes-ranges "-Dspark.sql.codegen.wholeStage=false -Dspark.sql.codegen.factoryMode=NO_CODEGEN"
    else
      job $v-$round $PWD/.gpulib/jobs-classes-$v
    fi
  done
  [ $round = 2 ] || { mkdir -p /tmp/o17/generate; timeout 120 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true \
    -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/e2e-prompts.jsonl \
    --output /tmp/e2e-generate-fp8.jsonl --device gpu --precision fp8 --max-new-tokens 128 --ignore-eos \
    --progress-seconds 10 2>&1 | grep -v PROF > /tmp/o17/generate/generate-fp8.log; tail -1 /tmp/o17/generate/generate-fp8.log; }
done
cp conf/log4j2.properties /tmp/log4j2.keep
sed -i 's/%d{HH:mm:ss} %p %c{1}/%d{HH:mm:ss.SSS} %p [%t] %c{1}/' conf/log4j2.properties
printf 'logger.cg.name = org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator\nlogger.cg.level = info\n' >> conf/log4j2.properties
job prof-1 $PWD/.gpulib/jobs-classes-prof
cp /tmp/log4j2.keep conf/log4j2.properties
for f in $(find /tmp/o17 -name "*.log"); do grep -vE "INFO org\.apache\.|^\s*launch|PtEngine|^SLF4J" $f > $f.tmp; mv $f.tmp $f; done
tar czf $OUT/e16b.tgz -C /tmp o17
