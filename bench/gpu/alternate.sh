#!/usr/bin/env bash
# On the GPU machine: builds of the job set against each other in one call, as `run31`-`run35` were measured. Each round
# runs every build's job once (bench/gpu/e2e.sh, the job alone, Spark's event log on), in an order turned by one place
# each round, so that no build always runs first; generate.sh runs once, in the jobs' precision, after the first round.
# Every run's files go under $ALT_WORK/LABEL-ROUND/ (job.log filtered of Spark's INFO lines, e2e.json, Spark's event log
# in ev/, its timeline from bench/spark_events.py, its stages' tasks from
# bench/spark_stages.py), and all of it into $OUT/$ALT_NAME.tgz, written again after every run
# (a call returns few files, and a cut-short call keeps what ran). At the end, bench/alternate_table.py's table.
#
#   bench/gpu/alternate.sh head=.gpulib/jobs-classes-head new=.gpulib/jobs-classes-new
#   ALT_ROUNDS=4 ALT_PRECISION=fp16 ALT_JAVA_OPTS_new=-Dspark.some.setting=x bench/gpu/alternate.sh head=DIR new=DIR
#
# LABEL=DIR: a build's label (letters, digits, underscores) and its jobs module's classes (E2E_JOBS_CLASSES). Environment:
# ALT_NAME (the tarball's name, default alternate), ALT_ROUNDS (3), ALT_PRECISION (the jobs' and generate.sh's, fp8),
# ALT_JAVA_OPTS_<LABEL> (more JVM options for that build's jobs), ALT_GENERATE (1; 0 skips generate.sh), ALT_WARM (1:
# first a job of the first build over 256 prompts, not measured and kept out of the table, since a fresh machine
# compiles the kernels at its first engine load; 0 skips it), ALT_WORK (/tmp/alternate), ALT_E2E (the command run per
# job, default bench/gpu/e2e.sh). Needs what bench/gpu/e2e.sh needs.
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: bench/gpu/alternate.sh LABEL=CLASSES_DIR ..." >&2; exit 2; }
labels=(); dirs=()
for arg in "$@"; do
  label=${arg%%=*}; dir=${arg#*=}
  [[ "$arg" == *=* && "$label" =~ ^[A-Za-z0-9_]+$ ]] || { echo "not LABEL=CLASSES_DIR: $arg" >&2; exit 2; }
  [ -d "$dir" ] || { echo "no classes directory $dir (for $label)" >&2; exit 2; }
  labels+=("$label"); dirs+=("$(cd "$dir" && pwd)")
done
NAME=${ALT_NAME:-alternate}
ROUNDS=${ALT_ROUNDS:-3}
PRECISION=${ALT_PRECISION:-fp8}
WORK=${ALT_WORK:-/tmp/alternate}
E2E=${ALT_E2E:-bench/gpu/e2e.sh}
mkdir -p "$WORK" "$OUT"
: > "$WORK/order.txt"
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; nproc
  lscpu 2>/dev/null | grep "Model name"; } > "$WORK/gpu.txt"
pack() { tar czf "$OUT/$NAME.tgz" -C "$(dirname "$WORK")" "$(basename "$WORK")"; }

job_alone() {  # $1 output directory, $2 classes, $3 seconds, then VAR=value settings: $E2E with the job alone
  local out=$1 classes=$2 limit=$3
  shift 3
  env "$@" OUT="$out" E2E_JOBS_CLASSES="$classes" E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 \
    E2E_DECODE=0 E2E_JOB_PRECISION="$PRECISION" timeout "$limit" $E2E > "$out/e2e.out" 2>&1
}

job() {  # $1 run name, $2 classes, $3 more JVM options
  local run=$WORK/$1 ev=$WORK/.ev
  mkdir -p "$run"; rm -rf "$ev"; mkdir -p "$ev"
  job_alone "$run" "$2" 180 \
    E2E_JOB_JAVA_OPTS="-Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file:$ev -Dspark.eventLog.compress=false $3"
  echo "$1" >> "$WORK/order.txt"
  if [ -n "$(ls -A "$ev")" ]; then
    mkdir -p "$run/ev" && cp -r "$ev"/* "$run/ev/"
    python3 bench/spark_events.py "$(ls -d "$ev"/* | tail -1)" > "$run/timeline.txt" 2>&1
    python3 bench/spark_stages.py "$(ls -d "$ev"/* | tail -1)" > "$run/stages.txt" 2>&1
  fi
  if [ -f "$run/job.log" ]; then
    grep -vE "INFO org\.apache\.|^\s*launch|PtEngine|^SLF4J" "$run/job.log" > "$run/job.log.tmp"
    mv "$run/job.log.tmp" "$run/job.log"
  fi
  echo "$1: $(grep -hE 'throughput|wall time|timeline' "$run/job.log" 2>/dev/null | tr -s ' ' | tr '\n' ' ')"
  pack
}

generate() {  # generate.sh once over the jobs' prompts, in their precision
  source bench/gpu/lib.sh
  mkdir -p "$WORK/generate"
  timeout 150 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -cp "/tmp/app/*" \
    io.sparkinfer.cli.GenerateCommand --model "$M" --input /tmp/e2e-prompts.jsonl \
    --output "/tmp/e2e-generate-$PRECISION.jsonl" --device gpu --precision "$PRECISION" --max-new-tokens 128 \
    --ignore-eos --progress-seconds 10 > "$WORK/generate/generate-$PRECISION.log" 2>&1
  tail -1 "$WORK/generate/generate-$PRECISION.log"
  pack
}

if [ "${ALT_WARM:-1}" = 1 ]; then  # the kernels compiled (and the first build's class-data archive written) first
  mkdir -p "$WORK/warm"
  job_alone "$WORK/warm" "${dirs[0]}" 300 E2E_PROMPTS=256
  echo "warm-up (not measured): $(grep -hE 'throughput' "$WORK/warm/job.log" 2>/dev/null | tr -s ' ')"
fi
n=${#labels[@]}
for round in $(seq 1 "$ROUNDS"); do
  for i in $(seq 0 $((n - 1))); do
    k=$(( (i + round - 1) % n ))
    opts_var="ALT_JAVA_OPTS_${labels[$k]}"
    job "${labels[$k]}-$round" "${dirs[$k]}" "${!opts_var:-}"
  done
  if [ "$round" = 1 ] && [ "${ALT_GENERATE:-1}" = 1 ]; then
    generate
  fi
done
python3 bench/alternate_table.py "$WORK" | tee "$WORK/table.md"
pack
