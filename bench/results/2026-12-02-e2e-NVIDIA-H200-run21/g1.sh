#!/usr/bin/env bash
# session 11, call G1 (a new machine, no Spark parts): generate.sh fp16 on the 8,192 prompts, twice, --batch-size auto
# counting the memory an earlier batch left in libtorch's caching allocator
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
source bench/gpu/lib.sh 2>/dev/null
bench_prompts /tmp/e2e-prompts.jsonl 8192 0 128 512 p
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
for i in 1 2; do
  timeout 150 java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true \
    -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/e2e-prompts.jsonl \
    --output /tmp/e2e-generate.jsonl --device gpu --precision fp16 --max-new-tokens 128 --ignore-eos \
    --progress-seconds 10 > $OUT/generate-fp16-$i.log 2>&1
  echo "run $i rc=$?"; grep -hE "batch-size auto|done:|out of device memory" $OUT/generate-fp16-$i.log | cut -c1-260
done
