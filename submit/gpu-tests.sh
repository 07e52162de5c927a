#!/usr/bin/env bash
# Runs the GPU-only tests (JUnit tag "gpu": CUDA graphs, ...), which CI skips for want of a GPU, with the
# JUnit console launcher, so it also works on a GPU machine without Maven.
#
# usage: submit/gpu-tests.sh [JUNIT_ARGS...]      (default: every class tagged gpu)
# env:   SPARKINFER_CP        engine classpath (default: common/target/*.jar and common/target/lib/*)
#        SPARKINFER_TEST_CP   test classes and test libraries (default: common/target/test-classes and
#                             assertj from ~/.m2, after `mvn -pl common test-compile`)
#        JUNIT_CONSOLE        junit-platform-console-standalone jar (default: from ~/.m2)
#        SPARKINFER_FIXTURES  the shared fixtures directory (default: ../shared/fixtures)
set -euo pipefail
HOME_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$HOME_DIR"
M2=${HOME}/.m2/repository
if [ -z "${SPARKINFER_CP:-}" ]; then
  # shellcheck source=lib/common.sh
  source "$HOME_DIR/submit/lib/common.sh"
  ensure_engine_built
  SPARKINFER_CP=$(engine_classpath)
fi
TEST_CP=${SPARKINFER_TEST_CP:-common/target/test-classes:$(ls "$M2"/org/assertj/assertj-core/*/assertj-core-*.jar 2>/dev/null | tail -1)}
JUNIT=${JUNIT_CONSOLE:-$(ls "$M2"/org/junit/platform/junit-platform-console-standalone/*/*.jar 2>/dev/null | tail -1)}
if [ -z "$JUNIT" ] || [ ! -f "$JUNIT" ]; then
  echo "gpu-tests: no JUnit console launcher; set JUNIT_CONSOLE or run" >&2
  echo "  mvn dependency:get -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.1" >&2
  exit 2
fi
# The launcher takes no "dir/*" wildcards: list the jars.
expand_cp() {
  local out="" entry
  IFS=':' read -ra entries <<< "$1"
  for entry in "${entries[@]}"; do
    if [[ "$entry" == *'/*' ]]; then
      for jar in "${entry%/\*}"/*.jar; do out="$out:$jar"; done
    else
      out="$out:$entry"
    fi
  done
  echo "${out#:}"
}
ARGS=("$@")
[ ${#ARGS[@]} -gt 0 ] || ARGS=(--scan-class-path --include-tag gpu)
exec java -Dai.djl.offline=true -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -Dsparkinfer.fixtures="${SPARKINFER_FIXTURES:-$HOME_DIR/../shared/fixtures}" \
  -jar "$JUNIT" execute --class-path "$(expand_cp "$TEST_CP:$SPARKINFER_CP")" --details=tree --disable-banner --disable-ansi-colors "${ARGS[@]}"
