#!/usr/bin/env bash
# session 18, first call: the fp8 job alternated in three rounds: head (main, 199691b), t1 (head with libtorch's CPU
# ops on one thread in the job's JVM), nocomp (head with shuffle and in-memory compression off) and cl (head with
# run33's task-classloader-warm-up.patch, Spark's artifact isolation off); a short generate.sh first compiles the
# kernels on the fresh machine (not measured).
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
python3 -c "import triton; print('triton', triton.__version__)" 2>&1 | tail -1
bench_prompts /tmp/warm.jsonl 256 0 128 512 p
timeout 150 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand \
  --model $M --input /tmp/warm.jsonl --output /tmp/warm-out.jsonl --device gpu --precision fp8 --max-new-tokens 8 \
  --ignore-eos > $OUT/warm.log 2>&1; tail -1 $OUT/warm.log
C=$PWD/.gpulib/jobs-classes
ALT_NAME=a1 ALT_ROUNDS=3 ALT_WORK=/tmp/a1 \
ALT_JAVA_OPTS_t1="-Dai.djl.pytorch.num_threads=1 -Dai.djl.pytorch.num_interop_threads=1" \
ALT_JAVA_OPTS_nocomp="-Dspark.shuffle.compress=false -Dspark.sql.inMemoryColumnarStorage.compressed=false" \
ALT_JAVA_OPTS_cl="-Dspark.sql.artifact.isolation.enabled=false" \
  bench/gpu/alternate.sh head=${C}-head t1=${C}-head nocomp=${C}-head cl=${C}-cl
