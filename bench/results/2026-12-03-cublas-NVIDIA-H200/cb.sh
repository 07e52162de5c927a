#!/usr/bin/env bash
# session 19: libtorch 2.5.1's cuBLAS (12.4.5, as DJL's pytorch-native-cu124 ships it) against cuBLAS 12.6.3
# (org.bytedeco:cuda:12.6-9.5-1.5.11:linux-x86_64-redist, its sm_90 code only), on one H200 in one call:
# 1. bench/cublas_shapes.py: the model's products at 256 rows (a decode step) and 32,768 (a prefill line), each build;
# 2. the engine with each build (a copy of the bundle's libtorch directory whose two cuBLAS files are 12.6.3's), and
#    each again with TORCH_BLAS_PREFER_CUBLASLT=1: submit/bench.sh's decode at batch 256 (--graph-timing), generate.sh
#    fp16 and fp8 on issue 13's 8,192 prompts.
# Needs the bundle in /tmp/g, the engine's jars in /tmp/app, cuBLAS 12.6.3's parts in /tmp/cb.
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee $OUT/gpu.txt
if [ ! -d /tmp/g/lt126 ]; then
  cat /tmp/cb/part.* | LD_LIBRARY_PATH=/tmp/g/zstd /tmp/g/zstd/zstd -d -q --long=27 | tar -C /tmp/cb -xf -
  cp -r /tmp/g/libtorch /tmp/g/lt126
  cp /tmp/cb/c126/libcublas.so.12 /tmp/g/lt126/libcublas-4cc45526.so.12
  cp /tmp/cb/c126/libcublasLt.so.12 /tmp/g/lt126/libcublasLt-44a813aa.so.12
  ln -sf libcublasLt-44a813aa.so.12 /tmp/g/lt126/libcublasLt.so.12  # 12.6's libcublas asks for it by this name
fi
timeout 120 python3 bench/cublas_shapes.py --cudart /tmp/g/libtorch/libcudart-8774224f.so.12 /tmp/g/libtorch /tmp/g/lt126 \
  > $OUT/shapes.jsonl 2> $OUT/shapes.err; tail -3 $OUT/shapes.err
bench_prompts /tmp/e2e-prompts.jsonl 8192 0 128 512 p
gen() {  # $1 label, $2 precision
  timeout 100 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand \
    --model $M --input /tmp/e2e-prompts.jsonl --output /tmp/gen-$1-$2.jsonl --device gpu --precision $2 \
    --max-new-tokens 128 --ignore-eos --progress-seconds 30 > $OUT/gen-$1-$2.log 2>&1
  echo "$1 $2: $(grep 'generate: done' $OUT/gen-$1-$2.log | grep -o '([0-9.]* tokens/s; prefill [0-9.]*s, decode [0-9.]*s')"
}
dec() {  # $1 label
  BENCH_ENGINE_OPTIONS=--graph-timing BENCH_BATCH_SIZES=256 BENCH_THREADS=1 BENCH_BACKENDS=scripted BENCH_CUDA_GRAPHS=true \
    BENCH_TIMEOUT=100 SPARKINFER_CP="/tmp/app/*" submit/bench.sh /tmp/b256-$1 engine > $OUT/dec-$1.log 2>&1
  cp /tmp/b256-$1/engine.json $OUT/dec-$1.json 2>/dev/null
  python3 -c "
import json,sys
r=[x for x in json.load(open('$OUT/dec-$1.json'))['runs'] if x['batch_size']==256][0]
print('$1 decode b256:', round(r['decode_tokens_per_s']), 'tokens/s, after capture', round(r.get('decode_tokens_per_s_after_capture') or 0), ', replay', r.get('graph_replay_ms'), 'ms')" 2>&1 | tail -1
}
variant() {  # $1 label, $2 libtorch directory, $3 TORCH_BLAS_PREFER_CUBLASLT or empty, $4 precisions
  export PYTORCH_LIBRARY_PATH=$2
  if [ -n "$3" ]; then export TORCH_BLAS_PREFER_CUBLASLT=$3; else unset TORCH_BLAS_PREFER_CUBLASLT; fi
  ( sleep 12; for p in $(pgrep -f GenerateCommand); do grep -o '/tmp/g/[a-z0-9]*/libcublas[^ ]*' /proc/$p/maps; done | sort -u ) > $OUT/maps-$1.txt &
  for precision in $4; do gen $1 $precision; done
  dec $1
}
head -256 /tmp/e2e-prompts.jsonl > /tmp/warm.jsonl  # a short run compiles our kernels into the kernel cache (a fresh
timeout 100 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand \
  --model $M --input /tmp/warm.jsonl --output /tmp/warm-out.jsonl --device gpu --precision fp16 --max-new-tokens 8 \
  --ignore-eos > $OUT/warm.log 2>&1; tail -1 $OUT/warm.log   # machine), not measured
variant c124 /tmp/g/libtorch "" "fp16 fp8"
variant c126 /tmp/g/lt126 "" "fp16 fp8"
variant c124lt /tmp/g/libtorch 1 "fp16"
variant c126lt /tmp/g/lt126 1 "fp16"
variant c126b /tmp/g/lt126 "" "fp16"
variant c124b /tmp/g/libtorch "" "fp16"
cat $OUT/maps-*.txt | sort | uniq -c
