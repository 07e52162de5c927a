#!/usr/bin/env bash
# The tuning job: times configurations of the engine (trials) over a search space and appends them to the
# sweep_trials table, with a report (OUTPUT/_report/RUN_ID/index.html) and the best configuration as
# best.properties for submit/infer.sh --properties-file.
#
#   submit/sweep.sh [--master URL] [--conf K=V]... [--properties-file F] --model DIR --output DIR [axes] [options]
#   submit/sweep.sh compare --output DIR [--baseline RUN_ID|previous] [--candidate RUN_ID|latest]
#   submit/sweep.sh report --output DIR [--run-id ID|latest] [--to DIR]   (draws a study's report again)
#
# Axes: --batch-sizes 1,4,16 (or 1..1024:log), --precisions fp16,bf16, --threads 1,2, --prompt-lens 128,512,
# --output-lens 64,256, --axis NAME=VALUES for any engine option, or --space conf/sweep/FILE.yaml.
# Spark as in submit/infer.sh: $SPARK_HOME/bin/spark-submit when SPARK_HOME is set, else the project's own
# Spark jars with conf/local.properties and --master local[*]. Exit status: 0 done, 1 failed, 2 bad options;
# compare exits 3 on a significant regression.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/spark.sh"

sparkinfer_parse_args "$@"
if [[ $SPARKINFER_HELP -eq 1 ]]; then
  sparkinfer_help "${BASH_SOURCE[0]}" io.sparkinfer.jobs.sweep.SweepJob
  exit 0
fi
sparkinfer_launch io.sparkinfer.jobs.sweep.SweepJob
