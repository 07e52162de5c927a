#!/usr/bin/env bash
# Prefix sharing (--shared-prefix) measured: 64 prompts (SP_PROMPTS) of one 256-token prefix and 64-256 unique
# tokens each (token ids, seed 0; random ids below the model's vocabulary), 4 new tokens, one batch, through
# generate.sh with --shared-prefix 0 and then 32, in one call: prefill seconds of each, their ratio, and whether the
# tokens are the same.
#
#   bench/shared_prefix.sh [generate.sh options, e.g. --model DIR --device gpu --precision fp16]
#
# env: SPARKINFER_GENERATE  the generate command (default submit/generate.sh; on the GPU machine, where there is no
#                           Maven: "java -Dai.djl.offline=true -cp /tmp/app/* io.sparkinfer.cli.GenerateCommand")
#      SP_VOCAB             ids are drawn below it (default 4096, the demo model's vocabulary)
set -euo pipefail
cd "$(dirname "$0")/.."
GEN=${SPARKINFER_GENERATE:-submit/generate.sh}
N=${SP_PROMPTS:-64}
W=$(mktemp -d)
python3 - "$W/prompts.jsonl" "$N" "${SP_VOCAB:-4096}" <<'PY'
import json, random, sys
r = random.Random(0)
vocab = int(sys.argv[3])
prefix = [r.randrange(4, vocab) for _ in range(256)]
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        suffix = [r.randrange(4, vocab) for _ in range(r.randint(64, 256))]
        f.write(json.dumps({"id": f"q{i}", "prompt_token_ids": prefix + suffix}) + "\n")
PY
set -f # $GEN splits into words, and a class path such as /tmp/app/* in it stays as it is
for shared in 0 32; do
  # shellcheck disable=SC2086
  $GEN --input "$W/prompts.jsonl" --output "$W/out-$shared.jsonl" --max-new-tokens 4 --batch-size "$N" \
    --shared-prefix $shared --progress-seconds 0 "$@" 2>&1 | grep "done:" | tee "$W/done-$shared.txt"
done
set +f
python3 - "$W" <<'PY'
import json, re, sys
w = sys.argv[1]
prefill = {s: float(re.search(r"prefill ([\d.]+)s", open(f"{w}/done-{s}.txt").read()).group(1)) for s in (0, 32)}
tokens = {s: [json.loads(l)["output_token_ids"] for l in open(f"{w}/out-{s}.jsonl")] for s in (0, 32)}
print(json.dumps({"prefill_s_without": prefill[0], "prefill_s_with": prefill[32],
                  "prefix_cache_prefill_speedup": round(prefill[0] / max(prefill[32], 1e-9), 2),
                  "same_tokens": tokens[0] == tokens[32]}))
PY
rm -rf "$W"
