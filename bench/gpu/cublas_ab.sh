#!/usr/bin/env bash
# On the GPU machine: the engine on the cuBLAS libtorch ships (12.4.5) against --cublas DIR, in one call. First the GPU
# tests with --cublas (SPARKINFER_CUBLAS; the tokens against transformers' on the fixtures), then, each without and with
# --cublas: submit/bench.sh's decode at batch 256 (--graph-timing: one step replayed), generate.sh fp16 and fp8 on issue
# 13's 8,192 prompts (their completions' ids compared), and the fp8 job (bench/gpu/e2e.sh's job alone); last,
# bench/cublas_shapes.py's products through both. Everything goes into $OUT/cublas_ab.tgz, packed after each step (a call
# returns few files); the summary to stdout and $OUT/summary.txt.
#
#   CUBLAS_AB_DIR=/tmp/cb/c126 bench/gpu/cublas_ab.sh        (the default: bench/gpu/cublas_parts.sh's parts in /tmp/cb)
#   CUBLAS_AB_TESTS=0 CUBLAS_AB_JOB=0 bench/gpu/cublas_ab.sh  (skip the GPU tests, the jobs; CUBLAS_AB_DEC=0,
#                                                            CUBLAS_AB_GEN=0 and CUBLAS_AB_SHAPES=0 skip those steps)
#
# Needs what bench/gpu/e2e.sh needs, and for the tests what bench/gpu/tests.sh needs carried in .gpulib/.
set -uo pipefail
export BENCH_CUBLAS=${CUBLAS_AB_DIR:-/tmp/cb/c126}
source bench/gpu/lib.sh
unset SPARKINFER_CUBLAS  # each run below names its own cuBLAS
CB=$BENCH_CUBLAS
W=/tmp/cublas_ab
rm -rf $W && mkdir -p $W
pack() { tar czf "$OUT/cublas_ab.tgz" -C /tmp cublas_ab; }
say() { echo "$*" | tee -a $W/summary.txt; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $W/gpu.txt
ls -la "$CB"/ >> $W/gpu.txt
bench_prompts /tmp/e2e-prompts.jsonl "${CUBLAS_AB_PROMPTS:-8192}" 0 128 512 p
head -256 /tmp/e2e-prompts.jsonl > /tmp/warm.jsonl
# generate.sh's engine, then its options (an array, not a function: timeout runs it)
generate=(java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand
  --model $M --device gpu --ignore-eos)
# a short run first: compiles our kernels on a fresh machine and writes --cublas's libtorch directory
timeout 120 "${generate[@]}" --input /tmp/warm.jsonl --output /tmp/warm-out.jsonl --precision fp16 --max-new-tokens 8 \
  --cublas "$CB" > $W/warm.log 2>&1
say "warm-up: $(grep -o 'cuBLAS [^]]*' $W/warm.log | head -1)"
LINKS=$(ls -td ~/.cache/sparkinfer/libtorch/libtorch-* 2>/dev/null | head -1)
ls -la "$LINKS" > $W/links.txt 2>&1
pack
if [ "${CUBLAS_AB_TESTS:-1}" = 1 ]; then
  # the GPU tests build their own engine options: SPARKINFER_CUBLAS does not reach them, so their JVM loads libtorch
  # from --cublas's directory itself
  SPARKINFER_CP="/tmp/app/*" SPARKINFER_TEST_CP="$R/.gpulib/test/classes:$R/.gpulib/test/assertj-core-3.27.3.jar" \
    JUNIT_CONSOLE=$R/.gpulib/test/junit-platform-console-standalone-1.14.1.jar SPARKINFER_FIXTURES=$R/.gpulib/fixtures \
    JAVA_TOOL_OPTIONS="-DPYTORCH_LIBRARY_PATH=$LINKS" timeout 200 submit/gpu-tests.sh 2>&1 \
    | grep -v "^\s*at \|WARN" > $W/tests.log
  say "GPU tests on $LINKS: $(grep -E 'tests (successful|failed)' $W/tests.log | tr -s ' []' ' ' | paste -sd,)"
  pack
fi
gen() {  # $1 label, $2 precision, then options
  local label=$1 precision=$2; shift 2
  timeout 120 "${generate[@]}" --input /tmp/e2e-prompts.jsonl --output /tmp/gen-$label.jsonl --precision $precision \
    --max-new-tokens 128 --progress-seconds 30 "$@" > $W/gen-$label.log 2>&1
  say "generate.sh $label: $(grep 'generate: done' $W/gen-$label.log | grep -o '([0-9.]* tokens/s; prefill [0-9.]*s, decode [0-9.]*s')"
  pack
}
dec() {  # $1 label, then engine options
  local label=$1; shift
  BENCH_ENGINE_OPTIONS="--graph-timing $*" BENCH_BATCH_SIZES=256 BENCH_THREADS=1 BENCH_BACKENDS=scripted \
    BENCH_CUDA_GRAPHS=true BENCH_TIMEOUT=120 SPARKINFER_CP="/tmp/app/*" submit/bench.sh /tmp/b256-$label engine \
    > $W/dec-$label.log 2>&1
  cp /tmp/b256-$label/engine.json $W/dec-$label.json 2>/dev/null
  say "decode at 256, $label: $(python3 -c "
import json
r = [x for x in json.load(open('$W/dec-$label.json'))['runs'] if x['batch_size'] == 256][0]
print(round(r['decode_tokens_per_s']), 'tokens/s,', round(r['decode_tokens_per_s_after_capture']), 'after the capture, a step',
      round(r['graph_replay_ms'], 3), 'ms replayed')" 2>&1 | tail -1)"
  pack
}
job() {  # $1 label, then job options
  local label=$1; shift
  mkdir -p $W/job-$label
  OUT=$W/job-$label E2E_JOB_OPTIONS="$*" E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 \
    E2E_JOB_PRECISION=fp8 timeout 200 bench/gpu/e2e.sh > $W/job-$label/e2e.out 2>&1
  say "job fp8 $label: $(grep -o 'throughput *[0-9.,]* completion tokens/s' $W/job-$label/job.log | tail -1)"
  pack
}
if [ "${CUBLAS_AB_DEC:-1}" = 1 ]; then
  dec bundled --cublas bundled
  dec cublas --cublas "$CB"
fi
if [ "${CUBLAS_AB_GEN:-1}" = 1 ]; then
  gen fp16-bundled fp16 --cublas bundled
  gen fp16-cublas fp16 --cublas "$CB"
  gen fp8-cublas fp8 --cublas "$CB"
  gen fp8-bundled fp8 --cublas bundled
fi
if [ "${CUBLAS_AB_JOB:-1}" = 1 ]; then
  job bundled --cublas bundled
  job cublas --cublas "$CB"
fi
python3 - <<'PY' | tee -a $W/summary.txt
import json
def ids(path):
    return {r["id"]: r["output_token_ids"] for r in map(json.loads, open(path))}
for precision in ("fp16", "fp8"):
    try:
        a, b = ids(f"/tmp/gen-{precision}-bundled.jsonl"), ids(f"/tmp/gen-{precision}-cublas.jsonl")
    except OSError:
        continue
    common = [next((i for i, (p, q) in enumerate(zip(a[k], b[k])) if p != q), len(b[k])) for k in b]
    print(f"{precision} ids with --cublas against without: first token {sum(c > 0 for c in common) / len(common):.4f}, "
          f"all {sum(c == len(b[k]) for c, k in zip(common, b)) / len(common):.4f}, "
          f"mean common prefix {sum(common) / len(common):.1f}")
PY
if [ "${CUBLAS_AB_SHAPES:-1}" = 1 ]; then
  timeout 120 python3 bench/cublas_shapes.py --cudart /tmp/g/libtorch/libcudart-8774224f.so.12 /tmp/g/libtorch "$CB" \
    > $W/shapes.jsonl 2> $W/shapes.err
  say "cublas_shapes.py: $(wc -l < $W/shapes.jsonl) lines"
  pack
fi
