#!/usr/bin/env bash
# On the GPU machine: the layouts issue's token check of decode threads inside the job. The batch job on 2,048
# prompts of 64-384 words (seed 1), 32 new tokens, greedy, fp32, batch 256, once with --layout threads=1 and once
# with threads=2; then every id must be answered exactly once in each run, and with the same tokens in both.
# Writes $OUT/threads_check.json (rows, ids answered once, rows with equal tokens, each run's throughput) and the logs.
#
#   bench/gpu/threads_check.sh
#
# Needs what bench/gpu/e2e.sh needs (the bundle in /tmp/g, the Spark parts in /tmp/s, the engine jars in /tmp/app,
# the job's classes in .gpulib/jobs-classes).
set -uo pipefail
source bench/gpu/lib.sh
bench_prompts /tmp/threads-prompts.jsonl 2048 1 64 384 q
source submit/lib/spark.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
for t in 1 2; do
  rm -rf /tmp/threads-out-$t
  timeout ${THREADS_TIMEOUT:-150} java "${SPARKINFER_JAVA_MODULE_OPTS[@]}" -Xmx24g -XX:MaxDirectMemorySize=64g \
    -Dai.djl.offline=true -Dlog4j2.configurationFile=$R/conf/log4j2.properties \
    -cp "$R/.gpulib/jobs-classes:/tmp/app/*:/tmp/sparkjars/*" org.apache.spark.deploy.SparkSubmit \
    --master 'local[4]' --properties-file $R/conf/local.properties --conf spark.driver.memory=24g \
    --class io.sparkinfer.jobs.BatchInferenceJob spark-internal \
    --model $M --input /tmp/threads-prompts.jsonl --output /tmp/threads-out-$t --format jsonl --device gpu \
    --precision fp32 --batch-size 256 --max-new-tokens 32 --ignore-eos --layout threads=$t --progress-seconds 10 2>&1 \
    | grep -v " WARN \|^\s*at \|^WARNING" > $OUT/threads-$t.log
  tail -12 $OUT/threads-$t.log
done
python3 - "$OUT" <<'PY'
import collections, glob, json, re, sys
out = sys.argv[1]
runs = {}
for t in (1, 2):
    rows = collections.defaultdict(list)
    for path in glob.glob(f"/tmp/threads-out-{t}/**/*.json", recursive=True):
        for line in open(path):
            row = json.loads(line)
            if "output_token_ids" in row:  # a completions row
                rows[row["id"]].append(row)
    runs[t] = rows
ids = {f"q{i}" for i in range(2048)}
once = {t: sum(1 for i in ids if len(runs[t].get(i, [])) == 1) for t in runs}
equal = sum(1 for i in ids if len(runs[1].get(i, [])) == 1 and len(runs[2].get(i, [])) == 1
            and runs[1][i][0]["output_token_ids"] == runs[2][i][0]["output_token_ids"]
            and runs[1][i][0].get("error_code") is None)
def throughput(t):
    m = re.search(r"throughput\s+([\d.,]+) completion tokens/s", open(f"{out}/threads-{t}.log").read())
    return float(m.group(1).replace(",", "")) if m else None
layouts = {t: sorted({r[0].get("layout") for r in runs[t].values() if r}) for t in runs}
result = {"gpu": open(f"{out}/gpu.txt").read().strip(), "command": "bench/gpu/threads_check.sh", "rows": len(ids),
          "answered_once_threads_1": once[1], "answered_once_threads_2": once[2], "equal_tokens": equal,
          "layouts": {str(t): layouts[t] for t in layouts},
          "tokens_per_s_threads_1": throughput(1), "tokens_per_s_threads_2": throughput(2)}
json.dump(result, open(f"{out}/threads_check.json", "w"), indent=2)
print(json.dumps(result, indent=2))
PY
