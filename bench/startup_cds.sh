#!/usr/bin/env bash
# The local driver's start-up with and without class-data sharing (submit/lib/spark.sh): the demo job
# (submit/infer.sh, the demo model and prompts, 4 new tokens) N times each way, alternated, after a first run that
# writes the archive; prints each run's process wall time and its first inference task.
#
#   bench/startup_cds.sh [N]          (default 3; the archive goes to a temporary SPARKINFER_CDS_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-3}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
run() {  # $1: true|false
  local start log
  log="$dir/run.log"
  start=$(date +%s.%N)
  SPARKINFER_CDS=$1 SPARKINFER_CDS_DIR="$dir/cds" submit/infer.sh --max-new-tokens 4 --output "$dir/out" --overwrite \
    > "$log" 2>&1 || { cat "$log" >&2; exit 1; }
  printf '%-22s process %5.1f s | %s\n' "$2" "$(python3 -c 'import sys, time; print(time.time() - float(sys.argv[1]))' "$start")" \
    "$(grep -o 'first inference task at [0-9.]* s' "$log")"
}
run true "writing the archive"
for i in $(seq 1 "$N"); do
  run false "without"
  run true "with the archive"
done
