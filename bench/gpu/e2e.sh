#!/usr/bin/env bash
# On the GPU machine: issue 13's end-to-end workload through the job and through generate.sh, one after another in
# one call, so their ratio is fair: 8,192 distinct prompts of 128-512 words (seed 0), 128 new tokens each
# (--ignore-eos), fp16, the random 1.5B checkpoint of bench/make_checkpoint.py, --batch-size auto on both.
# Writes $OUT/e2e.json (job_e2e_tokens_per_s_8k, generate_e2e_tokens_per_s_8k, generate_auto_batch_size, the job's
# timeline: first inference task, engine wait, generation and idle seconds, batch sizes; generate.sh's prefill against
# the dense fp16 peak (989 TFLOP/s), again with --packed-prefill=false (packed_prefill_speedup) and with
# --fused-prefill=false (fused_prefill_speedup); generate.sh's process wall time, its JVM's start and the load included
# (generate_process_wall_s; job_over_generate and job_over_generate_process set the job against generate.sh in the job's
# precision, job_over_generate_precision, where that ran: E2E_JOB_PRECISION=fp8 needs fp8 among E2E_PRECISIONS; the
# first sets the job's throughput over its run against generate.sh's printed figure, which counts its generation only,
# the second the two processes' wall times, each JVM's start and load included: job_process_wall_s against
# generate_process_wall_s_job_precision);
# generate.sh in fp8 and bf16
# (fp8_e2e_speedup over fp16, and how far their ids agree with fp16's); prefix_cache_prefill_speedup from
# bench/shared_prefix.sh on the same checkpoint; and engine_decode_tokens_per_s_b256 from submit/bench.sh's engine
# side) and the logs.
#
#   E2E_JOB_LAYOUT=threads=2 E2E_PROMPTS=8192 bench/gpu/e2e.sh
#   E2E_PADDED=0 E2E_SHARED=0 E2E_DECODE=0 bench/gpu/e2e.sh      # the job and generate.sh only
#   E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 bench/gpu/e2e.sh   # the job alone
#   E2E_JOB_JAVA_OPTS=-XX:StartFlightRecording=filename=$OUT/job.jfr E2E_GENERATE_JAVA_OPTS=... # JVM options of
#                                                                  # the job's and fp16 generate.sh's JVMs (a recording)
#   E2E_JOB_PRECISION=fp8 E2E_FP8=0 ... bench/gpu/e2e.sh           # the job in fp8 (job_precision; default fp16)
#   E2E_DECODE_OPTIONS=--graph-timing bench/gpu/e2e.sh             # engine options of the decode run at batch 256
#                                                                  # (--graph-timing: engine_graph_replay_ms_b256)
#   E2E_JOB_OPTIONS="--kv-cache-dtype fp8" bench/gpu/e2e.sh        # more options of the job (job_options)
#   E2E_JOB_CDS=0 bench/gpu/e2e.sh                                 # the job's driver without class-data sharing
#                                                                  # (default 1: as submit/infer.sh starts it, with an
#                                                                  # archive written first by a job over 256 prompts)
#   E2E_SUSTAINED=1 bench/gpu/e2e.sh                               # also a prefill line's products for 10 s through
#                                                                  # Python's PyTorch (bench/sustained_gemm.py): the
#                                                                  # rate the GPU sustains under its power cap, and
#                                                                  # prefill against it (prefill_fraction_of_sustained_8k)
#
# Needs what bench/gpu/study.sh needs (the bundle in /tmp/g, the Spark parts in /tmp/s, the engine jars in /tmp/app,
# the job's classes in .gpulib/jobs-classes).
set -uo pipefail
source bench/gpu/lib.sh
N=${E2E_PROMPTS:-8192}
bench_prompts /tmp/e2e-prompts.jsonl "$N" 0 128 512 p
source submit/lib/spark.sh
GPU=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)
echo "$GPU"
# the job's class path: its classes directory and the jars' directories; with E2E_JOB_CDS=1 (the default), every class
# as a jar, named one by one, and the class-data sharing options submit/lib/spark.sh gives the local driver, the archive
# written first by the job over the first 256 prompts (its log: $OUT/job-cds-archive.log). The classes' jar is written
# again only when a class is newer than it, so that later calls on the machine find their archive. E2E_JOBS_CLASSES
# names another classes directory (default .gpulib/jobs-classes; a jar and an archive of its own), e.g. an older build
# to alternate with.
CLASSES=${E2E_JOBS_CLASSES:-$R/.gpulib/jobs-classes}
JOBS_JAR=/tmp/e2e-jobs-$(echo "$CLASSES" | sha1sum | cut -c1-8).jar
JOB_CP="$CLASSES:/tmp/app/*:/tmp/sparkjars/*"
JOB_CDS=()
if [ "${E2E_JOB_CDS:-1}" = 1 ]; then
  # the bundle's jlink'd JRE has no base archive of its own classes, which dynamic archives build on (a JDK has one)
  server="$(dirname "$(readlink -f "$(command -v java)")")/../lib/server"
  [ -f "$server/classes.jsa" ] || java -Xshare:dump > /dev/null 2>&1 || echo "could not write $server/classes.jsa"
  [ -f "$JOBS_JAR" ] && [ -z "$(find "$CLASSES" -newer "$JOBS_JAR" -type f | head -1)" ] \
    || python3 - "$CLASSES" "$JOBS_JAR" <<'PY'
import os, sys, zipfile
root, jar = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(jar, "w", zipfile.ZIP_DEFLATED) as z:
    for d, _, files in os.walk(root):
        for f in files:
            z.write(os.path.join(d, f), os.path.relpath(os.path.join(d, f), root))
PY
  JOB_CP="$JOBS_JAR:$(ls /tmp/app/*.jar /tmp/sparkjars/*.jar | paste -sd:)"
fi
job() {  # $1 input, $2 log; the job over $1 into /tmp/e2e-out
  rm -rf /tmp/e2e-out
  timeout ${E2E_JOB_TIMEOUT:-240} java "${SPARKINFER_JAVA_MODULE_OPTS[@]}" ${JOB_CDS[@]+"${JOB_CDS[@]}"} ${E2E_JOB_JAVA_OPTS:-} \
    -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -Dlog4j2.configurationFile=$R/conf/log4j2.properties \
    -cp "$JOB_CP" org.apache.spark.deploy.SparkSubmit \
    --master "${E2E_MASTER:-local[*]}" --properties-file $R/conf/local.properties --conf spark.driver.memory=24g \
    --class io.sparkinfer.jobs.BatchInferenceJob spark-internal \
    --model $M --input "$1" --output /tmp/e2e-out --device gpu --precision "${E2E_JOB_PRECISION:-fp16}" \
    --max-new-tokens 128 --ignore-eos --layout "${E2E_JOB_LAYOUT:-threads=1}" --progress-seconds 10 ${E2E_JOB_OPTIONS:-} 2>&1 \
    | grep -v " WARN \|^\s*at \|^WARNING" > "$2"
}
if [ "${E2E_JOB_CDS:-1}" = 1 ]; then
  export SPARKINFER_CDS_DIR=/tmp/e2e-cds
  read -ra JOB_CDS <<< "$(sparkinfer_cds_options "$JOB_CP")"
  if [[ "${JOB_CDS[0]:-}" == -XX:ArchiveClassesAtExit=* ]]; then
    head -256 /tmp/e2e-prompts.jsonl > /tmp/e2e-prompts-256.jsonl
    job /tmp/e2e-prompts-256.jsonl $OUT/job-cds-archive.log
    read -ra JOB_CDS <<< "$(sparkinfer_cds_options "$JOB_CP")"
  fi
  echo "class-data sharing: ${JOB_CDS[0]:-none (no archive was written)}"
fi
# seconds since $1 (a date +%s.%N): a process's wall time, its JVM's start and the load included
since() { python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 1))" "$1"; }
JOB_START=$(date +%s.%N)
job /tmp/e2e-prompts.jsonl $OUT/job.log
export E2E_JOB_PROCESS_WALL_S=$(since "$JOB_START")
tail -20 $OUT/job.log
GENERATE_START=$(date +%s.%N)
[ "${E2E_GENERATE:-1}" = 0 ] || { timeout ${E2E_GENERATE_TIMEOUT:-200} java ${E2E_GENERATE_JAVA_OPTS:-} -Xmx24g \
  -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true \
  -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/e2e-prompts.jsonl \
  --output /tmp/e2e-generate.jsonl --device gpu --precision fp16 --max-new-tokens 128 --ignore-eos \
  --progress-seconds 10 > $OUT/generate.log 2>&1
  export E2E_GENERATE_WALL_S=$(since "$GENERATE_START"); }
touch $OUT/generate.log && tail -3 $OUT/generate.log
# the same with padded prefill (a row per prompt, masked SDPA): what packing gives (E2E_PADDED=0 skips it)
[ "${E2E_PADDED:-1}" = 0 ] || timeout ${E2E_GENERATE_TIMEOUT:-200} java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true \
  -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/e2e-prompts.jsonl \
  --output /tmp/e2e-generate-padded.jsonl --device gpu --precision fp16 --max-new-tokens 128 --ignore-eos \
  --packed-prefill=false --progress-seconds 10 > $OUT/generate-padded.log 2>&1
touch $OUT/generate-padded.log && tail -3 $OUT/generate-padded.log
# the same with the TorchScript prefill step (--fused-prefill=false): what the fused prefill kernels give
# (E2E_UNFUSED=0 skips it)
[ "${E2E_UNFUSED:-1}" = 0 ] || timeout ${E2E_GENERATE_TIMEOUT:-200} java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true \
  -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/e2e-prompts.jsonl \
  --output /tmp/e2e-generate-unfused.jsonl --device gpu --precision fp16 --max-new-tokens 128 --ignore-eos \
  --fused-prefill=false --progress-seconds 10 > $OUT/generate-unfused.log 2>&1
touch $OUT/generate-unfused.log && tail -3 $OUT/generate-unfused.log
# fp8 (bf16 with float8 projections) and bf16 through generate.sh: fp8_e2e_speedup over fp16 above, and the ids'
# agreement with fp16's (first token, leading ids in common; E2E_FP8=0 skips both, E2E_PRECISIONS=fp8 runs fp8 only)
for precision in ${E2E_PRECISIONS:-fp8 bf16}; do
  GENERATE_START=$(date +%s.%N)
  [ "${E2E_FP8:-1}" = 0 ] || { timeout ${E2E_GENERATE_TIMEOUT:-200} java -Xmx24g -XX:MaxDirectMemorySize=64g \
    -Dai.djl.offline=true -cp "/tmp/app/*" io.sparkinfer.cli.GenerateCommand --model $M --input /tmp/e2e-prompts.jsonl \
    --output /tmp/e2e-generate-$precision.jsonl --device gpu --precision $precision --max-new-tokens 128 --ignore-eos \
    --progress-seconds 10 > $OUT/generate-$precision.log 2>&1
    export E2E_GENERATE_WALL_S_${precision^^}=$(since "$GENERATE_START"); }
  touch $OUT/generate-$precision.log && tail -3 $OUT/generate-$precision.log
done
touch $OUT/generate-fp8.log $OUT/generate-bf16.log
# the shared-prefix workload (256 shared tokens, 64-256 unique; 2,048 prompts, E2E_SHARED_PROMPTS: with 256 the
# runs last about a second and their fixed costs hide the ratio), --shared-prefix 0 against 32 (E2E_SHARED=0 skips it)
[ "${E2E_SHARED:-1}" = 0 ] || SPARKINFER_GENERATE="java -Xmx24g -XX:MaxDirectMemorySize=64g -Dai.djl.offline=true -cp /tmp/app/* io.sparkinfer.cli.GenerateCommand" \
  SP_VOCAB=151936 SP_PROMPTS=${E2E_SHARED_PROMPTS:-2048} timeout ${E2E_SHARED_TIMEOUT:-120} bench/shared_prefix.sh --model $M --device gpu \
  --precision fp16 | tee $OUT/shared_prefix.log
# decode at batch 256 (issue 13's engine_decode_tokens_per_s_b256): submit/bench.sh's engine side on its own 512
# prompts, fp16, one thread, CUDA graphs (E2E_DECODE=0 skips it)
rm -f $OUT/engine256.json
[ "${E2E_DECODE:-1}" = 0 ] || { BENCH_ENGINE_OPTIONS="${E2E_DECODE_OPTIONS:-}" \
  BENCH_BATCH_SIZES=256 BENCH_THREADS=1 BENCH_BACKENDS=scripted BENCH_CUDA_GRAPHS=true \
  BENCH_TIMEOUT=${E2E_DECODE_TIMEOUT:-200} SPARKINFER_CP="/tmp/app/*" submit/bench.sh /tmp/e2e-bench256 engine \
  > $OUT/bench256.log 2>&1 && cp /tmp/e2e-bench256/engine.json $OUT/engine256.json; }
# the rate a prefill line's products sustain on this GPU (its power cap), in the same call (E2E_SUSTAINED=1)
[ "${E2E_SUSTAINED:-0}" = 0 ] || timeout 60 python3 bench/sustained_gemm.py --seconds 10 > $OUT/sustained.jsonl 2>&1

python3 - "$OUT" "$GPU" "$N" "${E2E_MASTER:-local[*]}" "${E2E_JOB_LAYOUT:-threads=1}" "${E2E_JOB_PRECISION:-fp16}" \
  "${E2E_JOB_OPTIONS:-}" <<'PY'
import json, os, re, sys, datetime
out, gpu, n, master, layout, job_precision = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
job_options = sys.argv[7]
job = open(f"{out}/job.log").read()
gen = "\n".join(l for l in open(f"{out}/generate.log") if "generate: done:" in l)
padded = "\n".join(l for l in open(f"{out}/generate-padded.log") if "generate: done:" in l)
unfused = "\n".join(l for l in open(f"{out}/generate-unfused.log") if "generate: done:" in l)
fp8 = "\n".join(l for l in open(f"{out}/generate-fp8.log") if "generate: done:" in l)
bf16 = "\n".join(l for l in open(f"{out}/generate-bf16.log") if "generate: done:" in l)
def num(pattern, text, cast=float):
    m = re.search(pattern, text)
    return cast(m.group(1).replace(",", "")) if m else None
timeline = re.search(r"first inference task at ([\d.]+) s \| inference ([\d.]+) s \(tasks ([\d.]+) s: waiting for "
                     r"engines ([\d.]+); generators generating ([\d.]+), idle ([\d.]+)\) \| batch sizes ([\d,]+)", job)
sizes_match = re.search(r"batch sizes ([\d,]+)\)", gen)  # "1467,4096": kept apart (num drops the commas)
sizes = sizes_match.group(1) if sizes_match else None
result = {
    "gpu": gpu.split(",")[0].strip(), "driver": gpu.split(",")[-1].strip(),
    "date": datetime.date.today().isoformat(), "command": "bench/gpu/e2e.sh", "prompts": n,
    "job_master": master, "job_layout": layout, "job_precision": job_precision, "job_options": job_options,
    "job_class_data_sharing": os.environ.get("E2E_JOB_CDS", "1") == "1",
    "job_e2e_tokens_per_s_8k": num(r"throughput\s+([\d.,]+) completion tokens/s", job),
    "job_wall_s": num(r"wall time\s+([\d.]+) s", job),
    "job_process_wall_s": float(os.environ["E2E_JOB_PROCESS_WALL_S"]),
    "generate_e2e_tokens_per_s_8k": num(r"generated tokens in \S+ \(([\d.]+) tokens/s", gen),
    "generate_prefill_s": num(r"prefill ([\d.]+)s", gen), "generate_decode_s": num(r"decode ([\d.]+)s", gen),
    "generate_auto_batch_size": max(int(s) for s in sizes.split(",")) if sizes else None,
    "generate_batch_sizes": sizes,
    "generate_padded_e2e_tokens_per_s_8k": num(r"generated tokens in \S+ \(([\d.]+) tokens/s", padded),
    "generate_padded_prefill_s": num(r"prefill ([\d.]+)s", padded),
    "generate_unfused_e2e_tokens_per_s_8k": num(r"generated tokens in \S+ \(([\d.]+) tokens/s", unfused),
    "generate_unfused_prefill_s": num(r"prefill ([\d.]+)s", unfused),
}
if result["generate_prefill_s"] and result["generate_padded_prefill_s"]:
    result["packed_prefill_speedup"] = result["generate_padded_prefill_s"] / result["generate_prefill_s"]
for name, text in (("fp8", fp8), ("bf16", bf16)):
    result[f"generate_{name}_e2e_tokens_per_s_8k"] = num(r"generated tokens in \S+ \(([\d.]+) tokens/s", text)
    result[f"generate_{name}_prefill_s"] = num(r"prefill ([\d.]+)s", text)
    result[f"generate_{name}_decode_s"] = num(r"decode ([\d.]+)s", text)
def ids(path):
    try:
        return {r["id"]: r["output_token_ids"] for r in map(json.loads, open(path))}
    except OSError:
        return None
fp16_ids = ids("/tmp/e2e-generate.jsonl")
for name in ("fp8", "bf16"):
    other = ids(f"/tmp/e2e-generate-{name}.jsonl") if result[f"generate_{name}_e2e_tokens_per_s_8k"] else None
    if fp16_ids and other:
        common = [next((i for i, (a, b) in enumerate(zip(fp16_ids[k], v)) if a != b), len(v)) for k, v in other.items()]
        result[f"{name}_first_token_agreement_with_fp16"] = sum(c > 0 for c in common) / len(common)
        result[f"{name}_mean_common_prefix_with_fp16"] = sum(common) / len(common)
if result["generate_fp8_e2e_tokens_per_s_8k"] and result["generate_e2e_tokens_per_s_8k"]:
    result["fp8_e2e_speedup"] = result["generate_fp8_e2e_tokens_per_s_8k"] / result["generate_e2e_tokens_per_s_8k"]
else:
    result["fp8_e2e_speedup"] = None
result["engine_decode_tokens_per_s_b256"] = None  # issue 13's field, from submit/bench.sh's engine side at batch 256
try:
    runs = json.load(open(f"{out}/engine256.json"))["runs"]
    b256 = next(r for r in runs if r["batch_size"] == 256)
    result["engine_decode_tokens_per_s_b256"] = b256["decode_tokens_per_s"]
    # its decode time holds the capture of the new cache's graphs (once per cache): the rate of the replayed steps
    result["engine_graph_capture_s_b256"] = b256.get("graph_capture_s")
    result["engine_decode_tokens_per_s_b256_after_capture"] = b256.get("decode_tokens_per_s_after_capture")
    # with E2E_DECODE_OPTIONS=--graph-timing: one step's device time replayed back to back, and the steps' mean
    result["engine_graph_replay_ms_b256"] = b256.get("graph_replay_ms")
    result["engine_decode_step_ms_b256"] = 1e3 * b256["decode_s"] / b256["decode_steps"] if b256["decode_steps"] else None
except (OSError, KeyError, StopIteration, ValueError):
    pass
if result["generate_prefill_s"] and result["generate_unfused_prefill_s"]:
    result["fused_prefill_speedup"] = result["generate_unfused_prefill_s"] / result["generate_prefill_s"]
prompt_tokens = num(r"(\d+) prompt tokens", gen, int)
result["generate_prompt_tokens"] = prompt_tokens
if prompt_tokens and result["generate_prefill_s"]:
    # prefill FLOP of the bench checkpoint: 2 x 1.31e9 weights a token multiplies (the LM head at last tokens only)
    result["prefill_prompt_tokens_per_s_8k"] = prompt_tokens / result["generate_prefill_s"]
    result["prefill_fraction_of_peak_8k"] = 2 * 1.31e9 * prompt_tokens / result["generate_prefill_s"] / 989e12
    if result["generate_fp8_prefill_s"]:
        # fp8's prefill (its products in float8) against the same dense fp16 peak: the FLOP the model needs per second
        result["prefill_fraction_of_fp16_peak_8k_fp8"] = \
            2 * 1.31e9 * prompt_tokens / result["generate_fp8_prefill_s"] / 989e12
if timeline:
    keys = ["first_inference_s", "inference_span_s", "inference_task_s", "engine_wait_s", "generate_s",
            "engine_idle_s"]
    result.update({f"job_{k}": float(v) for k, v in zip(keys, timeline.groups()[:6])})
    result["job_batch_sizes"] = timeline.group(7)
result["sustained_products_tflops"] = None  # E2E_SUSTAINED=1: bench/sustained_gemm.py's seconds after its first
try:
    sustained = json.loads(open(f"{out}/sustained.jsonl").read().strip().splitlines()[-1])
    result["sustained_products_tflops"] = sustained["after_it_tflops_mean"]
    result["sustained_sm_mhz_range"] = sustained["sm_mhz_range"]
    if result.get("prefill_fraction_of_peak_8k"):
        result["prefill_fraction_of_sustained_8k"] = \
            result["prefill_fraction_of_peak_8k"] * 989e12 / (sustained["after_it_tflops_mean"] * 1e12)
except (OSError, ValueError, IndexError, KeyError):
    pass
try:
    shared = json.loads(open(f"{out}/shared_prefix.log").read().strip().splitlines()[-1])
    result["prefix_cache_prefill_speedup"] = shared["prefix_cache_prefill_speedup"]
    result["prefix_cache_same_tokens"] = shared["same_tokens"]
except (OSError, ValueError, IndexError, KeyError):
    result["prefix_cache_prefill_speedup"] = None
# generate.sh's own figure leaves out its JVM's start and the model's load; the job's wall time has them
wall = os.environ.get("E2E_GENERATE_WALL_S")
result["generate_process_wall_s"] = float(wall) if wall else None
# the job against generate.sh in the job's precision (fp16: the first run; fp8, bf16: their runs, when made)
same = {"fp16": (result["generate_e2e_tokens_per_s_8k"], wall)}
for p, text in (("fp8", fp8), ("bf16", bf16)):
    same[p] = (num(r"generated tokens in \S+ \(([\d.]+) tokens/s", text), os.environ.get("E2E_GENERATE_WALL_S_" + p.upper()))
tokens_per_s, process_wall = same.get(job_precision, (None, None))
result["job_over_generate_precision"] = job_precision if tokens_per_s else None
if result["job_e2e_tokens_per_s_8k"] and tokens_per_s:
    result["job_over_generate"] = result["job_e2e_tokens_per_s_8k"] / tokens_per_s
if process_wall:
    # both processes from their JVM's start to their exit (the job's wall_s above counts from its run's start)
    result["generate_process_wall_s_job_precision"] = float(process_wall)
    result["job_over_generate_process"] = float(process_wall) / result["job_process_wall_s"]
json.dump(result, open(f"{out}/e2e.json", "w"), indent=2)
print(json.dumps(result, indent=2))
PY
