#!/usr/bin/env bash
# Batch inference with Spark: completes every prompt of a table and writes the completions table.
#
#   submit/infer.sh [--master URL] [--conf K=V]... [--properties-file F]... [--natives ARCHIVE] [job options]
#
# --properties-file may be repeated: the files apply in order, later keys winning. --natives ARCHIVE ships
# libtorch made by submit/package-natives.sh (spark-submit --archives ARCHIVE#libtorch, with the executors'
# PYTORCH_LIBRARY_PATH/VERSION/FLAVOR and DJL_OFFLINE set; on a local master the driver loads it).
#
# With no options it runs the demo: the demo checkpoint over jobs/demo/prompts.jsonl on local[*], writing
# under target/demo/. Job options (--model --input --output --format --max-new-tokens --temperature
# --top-k --top-p --seed --precision --batch-size --max-prompt-tokens --resume ...) are listed by --help.
#
# Spark: $SPARK_HOME/bin/spark-submit when SPARK_HOME is set (with the job jar; CPU libtorch is added
# with --jars unless PYTORCH_LIBRARY_PATH points at a libtorch of the cluster's own); otherwise the
# project's own Spark jars, with conf/local.properties, and --master local[*] unless given.
# Environment, for the driver JVM run without SPARK_HOME: SPARKINFER_DRIVER_MEMORY (default 4g),
# SPARKINFER_LOG_CONFIG (a log4j2 configuration; default conf/log4j2.properties).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/spark.sh"

sparkinfer_parse_args "$@"
if [[ $SPARKINFER_HELP -eq 1 ]]; then
  sparkinfer_help "${BASH_SOURCE[0]}" io.sparkinfer.jobs.BatchInferenceJob
  exit 0
fi
if ! sparkinfer_has_arg model; then
  SPARKINFER_JOB_ARGS+=(--model "$SPARKINFER_REPO/common/demo/qwen2-code-demo")
fi
if ! sparkinfer_has_arg input; then
  SPARKINFER_JOB_ARGS+=(--input "$SPARKINFER_REPO/jobs/demo/prompts.jsonl")
fi
if ! sparkinfer_has_arg output; then
  out="$SPARKINFER_REPO/target/demo/completions-$(date -u +%Y%m%d-%H%M%S)"
  echo "writing to $out" >&2
  SPARKINFER_JOB_ARGS+=(--output "$out")
fi
sparkinfer_launch io.sparkinfer.jobs.BatchInferenceJob
