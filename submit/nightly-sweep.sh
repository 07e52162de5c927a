#!/usr/bin/env bash
# A nightly sweep: runs a study from a space file, then compares it with the previous study of the same model
# and GPU in the same table. Exits 3 when a configuration got significantly slower by more than the threshold
# (so a scheduler can alert), 0 otherwise; a failed study exits as submit/sweep.sh does.
#
#   submit/nightly-sweep.sh --model DIR --output DIR [--space conf/sweep/nightly.yaml] [sweep options]
#
# env: SWEEP_THRESHOLD (default 0.05: a 5% drop), SWEEP_ALPHA (default 0.05). A cron line (03:00 every night):
#   0 3 * * * cd /opt/sparkinfer && submit/nightly-sweep.sh --model /models/m --output /data/sweeps >> /var/log/sweep.log 2>&1
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
args=("$@")
has_space=0 output=""
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --space|--space=*) has_space=1 ;;
    --output) output="${args[$((i + 1))]:-}" ;;
    --output=*) output="${args[$i]#*=}" ;;
  esac
done
[[ -n "$output" ]] || { echo "error: --output is required" >&2; exit 2; }
if [[ $has_space -eq 0 ]]; then
  args+=(--space "$here/../conf/sweep/nightly.yaml")
fi
"$here/sweep.sh" "${args[@]}"
exec "$here/sweep.sh" compare --output "$output" --baseline previous --candidate latest \
  --threshold "${SWEEP_THRESHOLD:-0.05}" --alpha "${SWEEP_ALPHA:-0.05}"
