#!/usr/bin/env bash
# The demo job over 8,192 prompts of 40-160 words (seed 0), 16 new tokens, on this machine's CPU, 150 s each: the
# landed code before this session (7e1a69e, a worktree at /tmp/oldtree) and then this checkout. Run from the repository.
python3 - <<'PY'
import json, random
r = random.Random(0)
with open("/tmp/p8k.jsonl", "w") as f:
    for i in range(8192):
        n = r.randint(40, 160)
        f.write(json.dumps({"id": f"p{i}", "prompt": " ".join(f"t{r.randrange(151000)}" for _ in range(n))}) + "\n")
PY
[ -d /tmp/oldtree ] || { git worktree add -q /tmp/oldtree 7e1a69e && (cd /tmp/oldtree && mvn -q -o package -DskipTests); }
for tree in /tmp/oldtree "$PWD"; do
  rm -rf /tmp/out8k
  (cd $tree && SPARKINFER_DRIVER_MEMORY=8g timeout -s TERM 150 submit/infer.sh --input /tmp/p8k.jsonl --output /tmp/out8k \
    --max-new-tokens 16 > /tmp/cpuab-$(basename $tree).log 2>&1)
  echo "== $tree"; grep -E "batch-size auto|progress" /tmp/cpuab-$(basename $tree).log | tail -3
done
