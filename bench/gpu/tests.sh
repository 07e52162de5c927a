#!/usr/bin/env bash
# On the GPU machine: the GPU-tagged tests (submit/gpu-tests.sh) with the JUnit console launcher; output to
# $OUT/tests.log. Needs the bundle in /tmp/g, the engine jars in /tmp/app, and carried in .gpulib/: test/classes
# (common/target/test-classes), test/assertj-core-*.jar, test/junit-platform-console-standalone-*.jar and
# fixtures/qwen2-tiny (from ../shared/fixtures).
set -uo pipefail
source .gpu/setup.sh >/dev/null
R=$PWD
export SPARKINFER_CP="/tmp/app/*"
export SPARKINFER_TEST_CP="$R/.gpulib/test/classes:$R/.gpulib/test/assertj-core-3.27.3.jar"
export JUNIT_CONSOLE=$R/.gpulib/test/junit-platform-console-standalone-1.14.1.jar
export SPARKINFER_FIXTURES=$R/.gpulib/fixtures
timeout ${TESTS_TIMEOUT:-300} submit/gpu-tests.sh "$@" 2>&1 | grep -v "^\s*at \|WARN" | tee $OUT/tests.log | tail -80
