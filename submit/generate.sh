#!/usr/bin/env bash
# Runs the engine over a JSONL file of prompts, without Spark. `submit/generate.sh --help` lists the options;
# with no options it completes the demo prompts with the demo model shipped in the repository.
# Builds the engine jar on first use (Maven). Environment: JAVA_OPTS (extra JVM options),
# SPARKINFER_REBUILD=1 (rebuild first), PYTORCH_LIBRARY_PATH (a CUDA libtorch 2.5.1 for GPUs).
set -euo pipefail
HOME_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/common.sh
source "$HOME_DIR/submit/lib/common.sh"
ensure_engine_built
exec java ${JAVA_OPTS:-} -Dai.djl.offline=true -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dsparkinfer.home="$HOME_DIR" -XX:MaxDirectMemorySize=64g \
  -cp "$(engine_classpath)" io.sparkinfer.cli.GenerateCommand "$@"
