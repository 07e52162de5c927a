# Sourced by the bench/gpu scripts, on the GPU machine from the repository's root: the bundle's environment
# (.gpu/setup.sh), the Spark runtime unpacked into /tmp/sparkjars, the random 1.5B checkpoint of
# bench/make_checkpoint.py in $M, the repository in $R, and bench_prompts to write a prompt file.
source .gpu/setup.sh >/dev/null
if [ -n "${BENCH_CUBLAS:-}" ]; then
  # BENCH_CUBLAS=DIR (/tmp/cb/c126: bench/gpu/cublas_parts.sh's parts, sent to /tmp/cb, unpacked here once): every
  # engine, generate.sh's and the job's, takes --cublas DIR (its environment variable, SPARKINFER_CUBLAS); and
  # libtorch's directory goes to the JVMs as a system property, as --cublas needs (DJL reads the environment's
  # PYTORCH_LIBRARY_PATH first, and --cublas points it elsewhere)
  [ -d "$BENCH_CUBLAS" ] || cat /tmp/cb/part.* | LD_LIBRARY_PATH=/tmp/g/zstd /tmp/g/zstd/zstd -d -q --long=27 | tar -C /tmp/cb -xf -
  export SPARKINFER_CUBLAS=$BENCH_CUBLAS
  export JAVA_TOOL_OPTIONS="-DPYTORCH_LIBRARY_PATH=$PYTORCH_LIBRARY_PATH"
  unset PYTORCH_LIBRARY_PATH
fi
R=$PWD
[ -d /tmp/sparkjars ] || cat /tmp/s/part.* | tar -C /tmp -xf -
M=/tmp/sparkinfer-bench-model
[ -f $M/config.json ] || timeout 120 python3 bench/make_checkpoint.py $M >/dev/null 2>&1

# bench_prompts FILE COUNT SEED MIN MAX PREFIX: COUNT JSONL rows {"id": PREFIX<i>, "prompt": ...} of MIN-MAX words
# t<id> (ids below the checkpoint's vocabulary, so each word is one token), drawn with SEED.
bench_prompts() {
  python3 - "$@" <<'PY'
import json, random, sys
path, count, seed, low, high, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
r = random.Random(seed)
with open(path, "w") as f:
    for i in range(count):
        n = r.randint(low, high)
        f.write(json.dumps({"id": f"{prefix}{i}", "prompt": " ".join(f"t{r.randrange(151000)}" for _ in range(n))}) + "\n")
PY
}
