#!/usr/bin/env bash
# session 19, the last call of the day's second lease (run as one command line): main (40d78dc, whose jobs give
# libtorch's CPU ops one thread each on a GPU, LibtorchThreads) against the same classes with
# -Dai.djl.pytorch.num_threads=16 (the JVM's setting wins, as libtorch's many threads ran before), two rounds; the
# machine had run the kernels' compile and jobs already (ALT_WARM=0).
source .gpu/setup.sh >/dev/null
C=$PWD/.gpulib/jobs-classes
ALT_NAME=lt ALT_ROUNDS=2 ALT_WARM=0 ALT_WORK=/tmp/lt ALT_JAVA_OPTS_m16="-Dai.djl.pytorch.num_threads=16" \
  timeout 280 bench/gpu/alternate.sh main=${C}-main m16=${C}-main
