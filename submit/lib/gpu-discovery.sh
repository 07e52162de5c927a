#!/usr/bin/env bash
# Spark resource discovery script for GPUs (spark.executor.resource.gpu.discoveryScript, and
# spark.worker.resource.gpu.discoveryScript on standalone workers): prints Spark's resource JSON,
#   {"name": "gpu", "addresses": ["0", "1"]}
# with the CUDA ordinals that `nvidia-smi --query-gpu=index --format=csv,noheader` lists (an empty list when
# it finds no device). Exits 1, saying why on stderr, when nvidia-smi is missing, fails, or prints something
# that is not an ordinal: Spark then reports the script's failure instead of starting an executor without GPUs.
set -euo pipefail

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu-discovery.sh: nvidia-smi is not on PATH ($PATH); install the NVIDIA driver's utilities on this node" >&2
  exit 1
fi
status=0
listing=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>&1) || status=$?
if [[ $status -ne 0 ]]; then
  if [[ "$listing" == *"No devices were found"* ]]; then
    listing="" # nvidia-smi's answer on a node without GPUs (exit 6)
  else
    echo "gpu-discovery.sh: 'nvidia-smi --query-gpu=index --format=csv,noheader' failed (exit $status): $listing" >&2
    exit 1
  fi
fi

addresses=()
while IFS= read -r line; do
  index="${line//[[:space:]]/}"
  [[ -z "$index" ]] && continue
  if [[ ! "$index" =~ ^[0-9]+$ ]]; then
    echo "gpu-discovery.sh: nvidia-smi listed '$line', not a GPU index: $listing" >&2
    exit 1
  fi
  addresses+=("\"$index\"")
done <<< "$listing"

joined=""
if [[ ${#addresses[@]} -gt 0 ]]; then
  joined=$(IFS=,; echo "${addresses[*]}")
fi
echo "{\"name\": \"gpu\", \"addresses\": [${joined}]}"
