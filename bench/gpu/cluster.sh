#!/usr/bin/env bash
# On the GPU machine: a real GPU-scheduled run. A Spark standalone cluster on 127.0.0.1 (submit/local-cluster.sh:
# a master and one worker of 4 cores that offers GPU 0, found by submit/lib/gpu-discovery.sh through nvidia-smi,
# and started with the bundle's environment, which its executors inherit), and the batch job submitted to it by
# submit/infer.sh with conf/gpu-cluster.properties and no --device: each inference task binds its engine to the GPU
# Spark assigned it (TaskContext.resources, DeviceBinding), so completions.device and job_runs.device read gpu:0.
# What does not apply on one machine is overridden: no RAPIDS (spark.plugins and spark.jars empty), this copy's
# discovery script, the bundle's libtorch, executors that load the job's classes and the engine's jars from local
# paths (spark.executor.extraClassPath; there is no job jar here). Workload: 512 distinct prompts of 64-256 words
# (seed 0), 32 new tokens (--ignore-eos), fp16, the random 1.5B checkpoint of bench/make_checkpoint.py.
# Writes $OUT/job.log (the driver's output), $OUT/summary.txt (the job's summary table), $OUT/devices.tsv (a few
# completions rows with their device, the rows per device, the job_runs row), $OUT/cluster.json (the verdict and
# its numbers) and $OUT/logs/ (master, worker, executor); prints the summary and devices.tsv. Exits 0 only when the
# job succeeded and every completion and the job_runs row say gpu:0.
#
#   bench/gpu/cluster.sh
#   CLUSTER_PROMPTS=4096 CLUSTER_MAX_NEW_TOKENS=128 bench/gpu/cluster.sh
#
# Needs what bench/gpu/e2e.sh needs (the bundle in /tmp/g, the Spark parts in /tmp/s, the engine jars in /tmp/app,
# the job's classes in .gpulib/jobs-classes). Environment, for other machines (a CPU dry run with a fake nvidia-smi
# and setup file): CLUSTER_SETUP (.gpu/setup.sh), CLUSTER_SPARK_JARS (/tmp/sparkjars), CLUSTER_APP_JARS (/tmp/app),
# CLUSTER_JOB_CLASSES (.gpulib/jobs-classes), CLUSTER_EXTRA_CP (added to the driver's and executors' class path,
# e.g. the CPU libtorch jar), CLUSTER_MODEL (a checkpoint to use instead of making the bench one),
# CLUSTER_PRECISION (fp16), CLUSTER_PROMPTS (512), CLUSTER_MAX_NEW_TOKENS (32), CLUSTER_EXECUTOR_MEMORY (24g),
# CLUSTER_WORKER_MEMORY (40g), CLUSTER_DIR (/tmp/sparkinfer-cluster), CLUSTER_START_TIMEOUT (90),
# CLUSTER_JOB_TIMEOUT (300), CLUSTER_SQL_TIMEOUT (90), SPARKINFER_MASTER_PORT (7077), CLUSTER_JOB_ARGS (more job
# options, last: --device cpu runs a CPU dry run to its end, its tables then saying cpu, not gpu:0).
set -uo pipefail
source "${CLUSTER_SETUP:-.gpu/setup.sh}" >/dev/null
R=$PWD
SPARKJARS=${CLUSTER_SPARK_JARS:-/tmp/sparkjars}
APPJARS=${CLUSTER_APP_JARS:-/tmp/app}
CLASSES=$(cd "${CLUSTER_JOB_CLASSES:-.gpulib/jobs-classes}" && pwd) || exit 2
C=${CLUSTER_DIR:-/tmp/sparkinfer-cluster}
[ -d "$SPARKJARS" ] || cat /tmp/s/part.* | tar -C /tmp -xf -
M=${CLUSTER_MODEL:-/tmp/sparkinfer-bench-model}
[ -n "${CLUSTER_MODEL:-}" ] || [ -f $M/config.json ] || timeout 120 python3 bench/make_checkpoint.py $M >/dev/null 2>&1
N=${CLUSTER_PROMPTS:-512}
python3 - "$N" <<'PY'
import json, random, sys
r = random.Random(0)
with open("/tmp/cluster-prompts.jsonl", "w") as f:
    for i in range(int(sys.argv[1])):
        n = r.randint(64, 256)
        f.write(json.dumps({"id": f"p{i}", "prompt": " ".join(f"t{r.randrange(151000)}" for _ in range(n))}) + "\n")
PY

# submit/'s scripts without a Maven build: the class paths come from the environment, the workers' SPARK_HOME-like
# directory links the Spark jars listed here.
export SPARKINFER_SPARK_CP=$(ls "$SPARKJARS"/*.jar | paste -sd:)
export SPARKINFER_APP_CP="$CLASSES:$APPJARS/*${CLUSTER_EXTRA_CP:+:$CLUSTER_EXTRA_CP}"
export SPARKINFER_CLUSTER_DIR=$C SPARKINFER_SPARK_HOME_DIR=$C/spark-home
export SPARKINFER_WORKERS=1 SPARKINFER_WORKER_CORES=4 SPARKINFER_WORKER_GPUS=1
export SPARKINFER_WORKER_MEMORY=${CLUSTER_WORKER_MEMORY:-40g}
# Logging as conf/log4j2.properties, plus the resources each JVM found or was given and the executors granted.
export SPARKINFER_LOG_CONFIG=$C/log4j2.properties

GPU=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)
echo "$GPU"
echo "discovery: $(submit/lib/gpu-discovery.sh)"

logs() { # the cluster's logs, and each executor's stderr (its last 4 MB)
  mkdir -p $OUT/logs
  cp $C/logs/*.log $OUT/logs/ 2>/dev/null
  for f in $C/work-1/app-*/*/stderr; do
    [ -f "$f" ] && tail -c 4000000 "$f" > "$OUT/logs/executor-$(basename "$(dirname "$f")").stderr"
  done
}
submit/local-cluster.sh stop 2>/dev/null # a cluster that a killed earlier run left running
rm -rf $C /tmp/cluster-out && mkdir -p $C
{ cat conf/log4j2.properties; echo
  for l in resource.ResourceUtils resource.ResourceProfile scheduler.cluster.StandaloneSchedulerBackend; do
    echo "logger.${l##*.}.name = org.apache.spark.$l"; echo "logger.${l##*.}.level = info"; done
} > $C/log4j2.properties
trap 'logs; submit/local-cluster.sh stop' EXIT
URL=$(timeout ${CLUSTER_START_TIMEOUT:-90} submit/local-cluster.sh start) || { echo "error: the cluster did not start"; exit 1; }
echo "master $URL"

timeout ${CLUSTER_JOB_TIMEOUT:-300} submit/infer.sh --master "$URL" --properties-file $R/conf/gpu-cluster.properties \
  --conf spark.plugins= --conf spark.jars= --conf spark.ui.enabled=false \
  --conf spark.executor.resource.gpu.discoveryScript=$R/submit/lib/gpu-discovery.sh \
  --conf spark.executorEnv.PYTORCH_LIBRARY_PATH=${PYTORCH_LIBRARY_PATH:-} \
  --conf spark.executorEnv.PYTORCH_VERSION=${PYTORCH_VERSION:-} \
  --conf spark.executorEnv.PYTORCH_FLAVOR=${PYTORCH_FLAVOR:-} \
  --conf spark.executor.memory=${CLUSTER_EXECUTOR_MEMORY:-24g} \
  --conf spark.executor.extraClassPath=$SPARKINFER_APP_CP \
  --conf "spark.executor.extraJavaOptions=-Dai.djl.offline=true -XX:MaxDirectMemorySize=64g -Dlog4j2.configurationFile=$SPARKINFER_LOG_CONFIG" \
  --model $M --input /tmp/cluster-prompts.jsonl --output /tmp/cluster-out --precision ${CLUSTER_PRECISION:-fp16} \
  --max-new-tokens ${CLUSTER_MAX_NEW_TOKENS:-32} --ignore-eos --progress-seconds 10 ${CLUSTER_JOB_ARGS:-} > $OUT/job.log 2>&1
echo "job exit status $?"
logs
sed -n '/^sparkinfer batch inference: run/,/^query it:/p' $OUT/job.log > $OUT/summary.txt
if [ -s $OUT/summary.txt ]; then cat $OUT/summary.txt
else grep -v " WARN \|^\s*at \|^WARNING" $OUT/job.log | tail -20; grep "^error:" $OUT/job.log > $OUT/summary.txt; fi

# The job_runs row (appended succeeded or failed); a few completions rows and the rows per device when it wrote them.
SQL=(--view r=/tmp/cluster-out/_job_runs "SELECT status, device, backend, precision, layout, executors, master, libtorch,
  rows, completion_tokens, tokens_per_s, wall_s, error FROM r")
[ -f /tmp/cluster-out/_SUCCESS ] && SQL+=(--view c=/tmp/cluster-out
  "SELECT id, device, executor_id, precision, layout, finish_reason, completion_tokens FROM c ORDER BY id LIMIT 5"
  "SELECT device, count(*) AS n FROM c GROUP BY device ORDER BY device")
timeout ${CLUSTER_SQL_TIMEOUT:-90} submit/sql.sh "${SQL[@]}" 2>$OUT/sql.log | tee $OUT/devices.tsv

python3 - "$OUT" "$GPU" "$N" <<'PY'
import glob, json, re, sys
out, gpu, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
tables = {}
for block in open(f"{out}/devices.tsv").read().strip().split("\n\n"):
    lines = block.splitlines()
    if lines:
        tables[lines[0].split("\t")[0]] = [dict(zip(lines[0].split("\t"), l.split("\t"))) for l in lines[1:]]
run = (tables.get("status") or [{}])[-1]
per_device = {r["device"]: int(r["n"]) for r in tables.get("device", [])}
executors = "".join(open(f).read() for f in glob.glob(f"{out}/logs/executor-*.stderr"))
result = {
    "gpu": gpu.split(",")[0].strip(), "driver": gpu.split(",")[-1].strip(), "command": "bench/gpu/cluster.sh",
    "prompts": n,
    # what the executor was given: ResourceUtils logs "Custom resources for spark.executor: gpu -> [...]"
    "executor_gpu_resource": bool(re.search(r"gpu -> \[name: gpu, addresses: 0\]", executors)),
    "job_runs": run, "completion_devices": per_device,
}
result["ok"] = (result["executor_gpu_resource"] and run.get("status") == "succeeded" and run.get("device") == "gpu:0"
                and per_device == {"gpu:0": n})
json.dump(result, open(f"{out}/cluster.json", "w"), indent=2)
print(json.dumps(result, indent=2))
sys.exit(0 if result["ok"] else 1)
PY
