#!/usr/bin/env bash
# Two builds of the engine on the same EngineBench workload, interleaved in one call (A, B, A, B), so a change
# is judged against the code before it on the same machine at the same time (machines of one kind differ by
# up to 2x). Run it on a GPU machine after submit/bench.sh has written its checkpoint.
#
# usage: bench/compare_engines.sh OUT_DIR CP_A CP_B [ARGS_A] [ARGS_B]
#   CP_A, CP_B   classpaths of the two builds (their engine jar and its dependencies, no CPU libtorch)
#   ARGS_A/B     EngineBench options of each (an older build may name them differently), default
#                "--batch-sizes 256,512 --threads 1 --backends scripted --precision fp16"
# env: BENCH_MODEL (default /tmp/sparkinfer-bench-model), ROUNDS (default 2)
# Writes OUT_DIR/a-N.json and OUT_DIR/b-N.json and prints decode and e2e tokens/s of each run.
set -euo pipefail
OUT=${1:?usage: bench/compare_engines.sh OUT_DIR CP_A CP_B [ARGS_A] [ARGS_B]}
CP_A=${2:?classpath of build A}
CP_B=${3:?classpath of build B}
DEFAULT="--batch-sizes 256,512 --threads 1 --backends scripted --precision fp16"
ARGS_A=${4:-$DEFAULT}
ARGS_B=${5:-$DEFAULT}
M=${BENCH_MODEL:-/tmp/sparkinfer-bench-model}
mkdir -p "$OUT"
run() { # name classpath args
  timeout 300 java -Dai.djl.offline=true -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -XX:MaxDirectMemorySize=64g \
    -cp "$2" io.sparkinfer.bench.EngineBench --model "$M" --prompts "$M/prompts.jsonl" --out "$OUT/$1.json" $3 >&2
}
for round in $(seq 1 "${ROUNDS:-2}"); do
  run "a-$round" "$CP_A" "$ARGS_A"
  run "b-$round" "$CP_B" "$ARGS_B"
done
python3 - "$OUT" <<'PY'
import glob, json, os, sys
print("| build | round | batch | threads | decode tok/s | e2e tok/s |\n| --- | --- | --- | --- | --- | --- |")
for f in sorted(glob.glob(os.path.join(sys.argv[1], "[ab]-*.json")), key=lambda p: (p[-6:], p)):
    build, rnd = os.path.basename(f)[:-5].split("-")
    for r in json.load(open(f))["runs"]:
        print(f"| {build} | {rnd} | {r['batch_size']} | {r['threads']} | {r['decode_tokens_per_s']:,.0f} | "
              f"{r['e2e_tokens_per_s']:,.0f} |")
PY
