#!/usr/bin/env bash
# session 19, on a fresh H200: --cublas as built (CublasOverride), cuBLAS 12.6.3 in /tmp/cb/c126 (cb.sh's parts).
# 1. a short generate.sh with --cublas (compiles our kernels, writes the libtorch links; its log names the cuBLAS);
# 2. the GPU tests (transformers' tokens on the fixtures) on cuBLAS 12.6.3: the JVM pointed at those links;
# 3. generate.sh fp16, submit/bench.sh's decode at 256 (--graph-timing), generate.sh fp8 and the fp8 job (e2e.sh's
#    job alone), each bundled and with --cublas, one after the other.
set -uo pipefail
export BENCH_CUBLAS=/tmp/cb/c126
source bench/gpu/lib.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
CB=$BENCH_CUBLAS
bench_prompts /tmp/e2e-prompts.jsonl 8192 0 128 512 p
head -256 /tmp/e2e-prompts.jsonl > /tmp/warm.jsonl
G() { java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -Dorg.slf4j.simpleLogger.defaultLogLevel=info -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand --model $M --device gpu --max-new-tokens 128 --ignore-eos "$@"; }
timeout 100 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -Dorg.slf4j.simpleLogger.defaultLogLevel=info -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand --model $M --device gpu --ignore-eos --input /tmp/warm.jsonl --output /tmp/warm-out.jsonl --precision fp16 --max-new-tokens 8 --cublas $CB > $OUT/warm.log 2>&1
grep -i "cublas" $OUT/warm.log | head -3; tail -1 $OUT/warm.log
LINKS=$(ls -d ~/.cache/sparkinfer/libtorch/cublas-* | head -1); ls -la $LINKS | grep cublas > $OUT/links.txt; cat $OUT/links.txt
# the GPU tests as bench/gpu/tests.sh runs them, libtorch taken from the links (the tests build their own options)
SPARKINFER_CP="/tmp/app/*" SPARKINFER_TEST_CP="$R/.gpulib/test/classes:$R/.gpulib/test/assertj-core-3.27.3.jar" \
  JUNIT_CONSOLE=$R/.gpulib/test/junit-platform-console-standalone-1.14.1.jar SPARKINFER_FIXTURES=$R/.gpulib/fixtures \
  JAVA_TOOL_OPTIONS="-DPYTORCH_LIBRARY_PATH=$LINKS" timeout 150 submit/gpu-tests.sh 2>&1 | grep -v "^\s*at \|WARN" > $OUT/tests.log
grep -E "tests (successful|failed|found)|Test run finished" $OUT/tests.log; grep -B2 -A8 "✘" $OUT/tests.log | head -40
gen() {  # $1 label, $2 precision, then options
  local label=$1 precision=$2; shift 2
  G --input /tmp/e2e-prompts.jsonl --output /tmp/gen-$label.jsonl --precision $precision --progress-seconds 30 "$@" > $OUT/gen-$label.log 2>&1
  echo "gen $label: $(grep 'generate: done' $OUT/gen-$label.log | grep -o '([0-9.]* tokens/s; prefill [0-9.]*s, decode [0-9.]*s')"
}
dec() {  # $1 label, then engine options
  local label=$1; shift
  BENCH_ENGINE_OPTIONS="--graph-timing $*" BENCH_BATCH_SIZES=256 BENCH_THREADS=1 BENCH_BACKENDS=scripted BENCH_CUDA_GRAPHS=true \
    BENCH_TIMEOUT=100 SPARKINFER_CP="/tmp/app/*" submit/bench.sh /tmp/b256-$label engine > $OUT/dec-$label.log 2>&1
  cp /tmp/b256-$label/engine.json $OUT/dec-$label.json 2>/dev/null
  python3 -c "
import json
r=[x for x in json.load(open('$OUT/dec-$label.json'))['runs'] if x['batch_size']==256][0]
print('dec $label b256:', round(r['decode_tokens_per_s']), 'tokens/s, after capture', round(r.get('decode_tokens_per_s_after_capture') or 0), ', replay', r.get('graph_replay_ms'), 'ms')" 2>&1 | tail -1
}
job() {  # $1 label, then job options
  local label=$1; shift
  mkdir -p $OUT/job-$label
  OUT=$OUT/job-$label E2E_JOB_OPTIONS="$*" E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 \
    E2E_JOB_PRECISION=fp8 timeout 150 bench/gpu/e2e.sh > $OUT/job-$label/e2e.out 2>&1
  echo "job $label: $(grep -o 'throughput *[0-9.,]* completion tokens/s' $OUT/job-$label/job.log | tail -1), $(grep -o 'wall time *[0-9.]* s' $OUT/job-$label/job.log | tail -1)"
}
gen fp16-bundled fp16
gen fp16-cublas fp16 --cublas $CB
dec cublas --cublas $CB
gen fp8-cublas fp8 --cublas $CB
job cublas --cublas $CB
job bundled
gen fp8-bundled fp8
job cublas2 --cublas $CB
python3 - $OUT <<'PY'
import json, sys
def ids(p):
    return {r["id"]: r["output_token_ids"] for r in map(json.loads, open(p))}
for a, b in (("fp16-bundled", "fp16-cublas"), ("fp8-bundled", "fp8-cublas")):
    try:
        x, y = ids(f"/tmp/gen-{a}.jsonl"), ids(f"/tmp/gen-{b}.jsonl")
    except OSError:
        continue
    common = [next((i for i, (p, q) in enumerate(zip(x[k], y[k])) if p != q), len(y[k])) for k in y]
    print(f"{b} against {a}: first token agrees {sum(c > 0 for c in common) / len(common):.4f}, "
          f"all 128 ids {sum(c == 128 for c in common) / len(common):.4f}, mean common prefix {sum(common) / len(common):.1f}")
PY
timeout 90 python3 bench/cublas_shapes.py --cudart /tmp/g/libtorch/libcudart-8774224f.so.12 /tmp/g/libtorch $CB \
  > $OUT/shapes.jsonl 2> $OUT/shapes.err; tail -2 $OUT/shapes.err; wc -l < $OUT/shapes.jsonl
cd $OUT && tar czf /tmp/v.tgz . && mv /tmp/v.tgz $OUT/v.tgz
