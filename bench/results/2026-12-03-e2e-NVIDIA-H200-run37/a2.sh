#!/usr/bin/env bash
# session 18, second call (a fresh machine: the first went back between the calls): a short generate.sh first compiles
# the kernels (not measured), then the fp8 job alternated in three rounds: head (main, 199691b), tc (run33's
# task-classloader-warm-up.patch with Spark's artifact isolation off, and libtorch's CPU ops on one thread in the job's
# JVM: a1's cl and t1 together), t1 and cl (as in a1).
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
bench_prompts /tmp/warm.jsonl 256 0 128 512 p
timeout 150 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand \
  --model $M --input /tmp/warm.jsonl --output /tmp/warm-out.jsonl --device gpu --precision fp8 --max-new-tokens 8 \
  --ignore-eos > $OUT/warm.log 2>&1; tail -1 $OUT/warm.log
C=$PWD/.gpulib/jobs-classes
T1="-Dai.djl.pytorch.num_threads=1 -Dai.djl.pytorch.num_interop_threads=1"
CL="-Dspark.sql.artifact.isolation.enabled=false"
ALT_NAME=a2 ALT_ROUNDS=3 ALT_WORK=/tmp/a2 ALT_JAVA_OPTS_tc="$CL $T1" ALT_JAVA_OPTS_t1="$T1" ALT_JAVA_OPTS_cl="$CL" \
  bench/gpu/alternate.sh head=${C}-head tc=${C}-cl t1=${C}-head cl=${C}-cl
