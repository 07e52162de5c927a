#!/usr/bin/env bash
# The GPU benchmark (issue 4): the engine against transformers generate() on the same GPU, in one call.
# Needs a CUDA GPU, python3 with torch + transformers + safetensors, java 17, and the engine's classpath.
#
# usage: submit/bench.sh [OUT_DIR] [all|transformers|engine|report]   (default all; the sides can run as separate
#        commands on one machine, e.g. to keep each under a time limit)
# env:   SPARKINFER_CP     engine classpath (default: common/target/*.jar and common/target/lib/*, built by Maven)
#        BENCH_MODEL       where the random checkpoint is written (default /tmp/sparkinfer-bench-model)
#        BENCH_BATCH_SIZES (default 1,8,64,256,512)   BENCH_THREADS (default 1,2)   BENCH_BACKENDS (default scripted,eager)
#        BENCH_CUDA_GRAPHS scripted runs with CUDA graphs, without, or both: true|false|true,false (default true,false)
#        BENCH_PRECISION   fp16|bf16: the dtype both sides compute in (default fp16)
#        BENCH_ENGINE_OPTIONS  more engine options for every engine run, e.g. "--fused-attention flash --graph-timing"
#        BENCH_TIMEOUT     seconds per side (default 1200)
# Writes OUT_DIR/{hf,engine,result}.json and copies result.json to bench/results/DATE-TIME-GPU.json; also
# OUT_DIR/plan.json, the engine's step description for bench/profile_step.py and bench/fused_step.py.
set -euo pipefail
HOME_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$HOME_DIR"
OUT=${1:-$HOME_DIR/bench/out}
SIDE=${2:-all}
MODEL=${BENCH_MODEL:-/tmp/sparkinfer-bench-model}
BS=${BENCH_BATCH_SIZES:-1,8,64,256,512}
THREADS=${BENCH_THREADS:-1,2}
BACKENDS=${BENCH_BACKENDS:-scripted,eager}
GRAPHS=${BENCH_CUDA_GRAPHS:-true,false}
PRECISION=${BENCH_PRECISION:-fp16}
LIMIT=${BENCH_TIMEOUT:-1200}
if [ -z "${SPARKINFER_CP:-}" ] && { [ "$SIDE" = all ] || [ "$SIDE" = engine ]; }; then
  # shellcheck source=lib/common.sh
  source "$HOME_DIR/submit/lib/common.sh"
  ensure_engine_built
  SPARKINFER_CP=$(engine_classpath)
fi
mkdir -p "$OUT" bench/results
python3 bench/make_checkpoint.py "$MODEL"
if [ -n "${SPARKINFER_CP:-}" ]; then
  java -cp "$SPARKINFER_CP" io.sparkinfer.bench.StepPlan --model "$MODEL" --out "$OUT/plan.json" \
    --batch-sizes "1,8,64,256,512" --precision "$PRECISION"
fi
if [ "$SIDE" = all ] || [ "$SIDE" = transformers ]; then
  echo "== transformers" >&2
  timeout "$LIMIT" python3 bench/transformers_bench.py "$MODEL" "$MODEL/prompts.jsonl" "$OUT/hf.json" --batch-sizes "$BS" --dtype "$PRECISION"
fi
if [ "$SIDE" = all ] || [ "$SIDE" = engine ]; then
  echo "== sparkinfer" >&2
  timeout "$LIMIT" java ${JAVA_OPTS:-} -Dai.djl.offline=true -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -XX:MaxDirectMemorySize=64g -cp "$SPARKINFER_CP" io.sparkinfer.bench.EngineBench \
  --model "$MODEL" --prompts "$MODEL/prompts.jsonl" --out "$OUT/engine.json" \
  --batch-sizes "$BS" --threads "$THREADS" --backends "$BACKENDS" --graph-runs "$GRAPHS" --precision "$PRECISION" \
  --eager-batch-sizes "${BENCH_EAGER_BATCH_SIZES:-256}" ${BENCH_ENGINE_OPTIONS:-}
fi
[ "$SIDE" = transformers ] || [ "$SIDE" = engine ] && exit 0
python3 bench/report.py "$OUT/hf.json" "$OUT/engine.json" "$MODEL" \
  "BENCH_BATCH_SIZES=$BS BENCH_THREADS=$THREADS BENCH_BACKENDS=$BACKENDS BENCH_CUDA_GRAPHS=$GRAPHS BENCH_PRECISION=$PRECISION submit/bench.sh" > "$OUT/result.json"
GPU=$(python3 -c "import json; print(json.load(open('$OUT/result.json'))['gpu'].replace(' ', '-'))")
cp "$OUT/result.json" "bench/results/$(date +%F-%H%M)-$GPU.json"
echo "result: bench/results/ (newest file)" >&2
