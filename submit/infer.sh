#!/usr/bin/env bash
# Batch inference with Spark: completes every prompt of a table and writes the completions table.
#
#   submit/infer.sh [--master URL] [--conf K=V]... [--properties-file F] [job options]
#
# With no options it runs the demo: the demo checkpoint over jobs/demo/prompts.jsonl on local[*], writing
# under target/demo/. Job options (--model --input --output --format --max-new-tokens --temperature
# --top-k --top-p --seed --precision --batch-size --max-prompt-tokens --resume ...) are listed by --help.
#
# Spark: $SPARK_HOME/bin/spark-submit when SPARK_HOME is set (with the job jar; CPU libtorch is added
# with --jars unless PYTORCH_LIBRARY_PATH points at a libtorch of the cluster's own); otherwise the
# project's own Spark jars, with conf/local.properties, and --master local[*] unless given.
# Environment: SPARKINFER_DRIVER_MEMORY (default 4g) for the driver JVM run without SPARK_HOME.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/spark.sh"

master=""
props=""
spark_args=()
job_args=()
have_model=0 have_input=0 have_output=0 help=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --master) [[ $# -ge 2 ]] || sparkinfer_die "--master needs a value"; master="$2"; shift 2 ;;
    --master=*) master="${1#*=}"; shift ;;
    --conf) [[ $# -ge 2 ]] || sparkinfer_die "--conf needs K=V"; spark_args+=(--conf "$2"); shift 2 ;;
    --conf=*) spark_args+=(--conf "${1#*=}"); shift ;;
    --properties-file) [[ $# -ge 2 ]] || sparkinfer_die "--properties-file needs a file"; props="$2"; shift 2 ;;
    --properties-file=*) props="${1#*=}"; shift ;;
    -h|--help) help=1; shift ;;
    *)
      case "$1" in
        --model|--model=*) have_model=1 ;;
        --input|--input=*) have_input=1 ;;
        --output|--output=*) have_output=1 ;;
      esac
      job_args+=("$1"); shift ;;
  esac
done

if [[ -n "${SPARK_HOME:-}" ]]; then
  sparkinfer_ensure_build --jar
else
  sparkinfer_ensure_build
fi

if [[ $help -eq 1 ]]; then
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'
  echo
  "$(sparkinfer_java)" -cp "$(sparkinfer_app_classpath):$(sparkinfer_spark_classpath)" \
    "$SPARKINFER_MAIN_CLASS" --help
  exit 0
fi

if [[ $have_model -eq 0 ]]; then
  job_args+=(--model "$SPARKINFER_REPO/common/demo/qwen2-code-demo")
fi
if [[ $have_input -eq 0 ]]; then
  job_args+=(--input "$SPARKINFER_REPO/jobs/demo/prompts.jsonl")
fi
if [[ $have_output -eq 0 ]]; then
  out="$SPARKINFER_REPO/target/demo/completions-$(date -u +%Y%m%d-%H%M%S)"
  echo "writing to $out" >&2
  job_args+=(--output "$out")
fi

if [[ -n "${SPARK_HOME:-}" ]]; then
  submit_args=(--class "$SPARKINFER_MAIN_CLASS")
  [[ -n "$master" ]] && submit_args+=(--master "$master")
  [[ -n "$props" ]] && submit_args+=(--properties-file "$props")
  if [[ -z "${PYTORCH_LIBRARY_PATH:-}" ]]; then
    submit_args+=(--jars "$(sparkinfer_native_cpu_jar)")
  fi
  exec "$SPARK_HOME/bin/spark-submit" "${submit_args[@]}" ${spark_args[@]+"${spark_args[@]}"} \
    "$(sparkinfer_job_jar_or_empty)" "${job_args[@]}"
fi

master="${master:-local[*]}"
props="${props:-$SPARKINFER_REPO/conf/local.properties}"
classpath="$(sparkinfer_app_classpath):$(sparkinfer_spark_classpath)"
submit_args=(--master "$master" --properties-file "$props" --class "$SPARKINFER_MAIN_CLASS")
if [[ "$master" == local* ]]; then
  resource="spark-internal" # the driver is the executor: the job's classes are on its class path already
else
  # A cluster (e.g. submit/local-cluster.sh): its executors get the job jar and CPU libtorch from the driver.
  sparkinfer_ensure_build --jar
  resource="$(sparkinfer_job_jar_or_empty)"
  submit_args+=(--jars "$(sparkinfer_native_cpu_jar)")
fi
exec "$(sparkinfer_java)" "${SPARKINFER_JAVA_MODULE_OPTS[@]}" -Xmx"${SPARKINFER_DRIVER_MEMORY:-4g}" \
  -Dai.djl.offline=true -Dlog4j2.configurationFile="$SPARKINFER_REPO/conf/log4j2.properties" \
  -cp "$classpath" org.apache.spark.deploy.SparkSubmit "${submit_args[@]}" \
  ${spark_args[@]+"${spark_args[@]}"} "$resource" "${job_args[@]}"
