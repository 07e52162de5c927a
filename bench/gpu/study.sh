#!/usr/bin/env bash
# On the GPU machine (no Java, no Maven there): a sweep study on local Spark, its tables to $OUT/study.tgz.
#
#   STUDY_SPACE=conf/sweep/decode.yaml bench/gpu/study.sh RUN_ID            # README's H200 study
#   bench/gpu/study.sh RUN_ID --batch-sizes 64,256 --threads 1,2,4 --precisions fp16 --output-lens 256 \
#       --reference-precision none                                           # README's decode-threads table
#
# Needs, sent beforehand as ../shared/gpu/README.md says: the bundle in /tmp/g (.gpu/p00, c00...), the Spark
# runtime parts in /tmp/s (.gpu/s00...), the engine jars in /tmp/app (common/target/*.jar and its dependencies,
# without the CPU libtorch jar and without slf4j-simple, which would take the job's logging from log4j2: Spark then
# logs at INFO), and the job's classes in .gpulib/jobs-classes (carried). Draw the report on a
# machine with fonts: submit/sweep.sh report --output DIR --run-id RUN_ID.
set -uo pipefail
source .gpu/setup.sh >/dev/null
R=$PWD
export PYTHONUNBUFFERED=1
[ -d /tmp/sparkjars ] || cat /tmp/s/part.* | tar -C /tmp -xf -
M=/tmp/sparkinfer-bench-model
[ -f $M/config.json ] || timeout 120 python3 bench/make_checkpoint.py $M >/dev/null 2>&1
source submit/lib/spark.sh
CP="$R/.gpulib/jobs-classes:/tmp/app/*:/tmp/sparkjars/*"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout ${STUDY_TIMEOUT:-450} java "${SPARKINFER_JAVA_MODULE_OPTS[@]}" -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true \
  -Dlog4j2.configurationFile=$R/conf/log4j2.properties -cp "$CP" org.apache.spark.deploy.SparkSubmit \
  --master 'local[1]' --properties-file $R/conf/local.properties --conf spark.driver.memory=24g \
  --class io.sparkinfer.jobs.sweep.SweepJob spark-internal \
  --model $M --output /tmp/study ${STUDY_SPACE:+--space $R/$STUDY_SPACE} --device gpu --run-id "$1" "${@:2}" 2>&1 \
  | grep -v " WARN \|^\s*at \|^WARNING" | tee $OUT/study.log | tail -60
tar -C /tmp -czf $OUT/study.tgz study
ls -la $OUT
