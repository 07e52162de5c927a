#!/usr/bin/env bash
# FusedPrefillGpuTest alone, into $OUT/tests-one.log (bench/gpu/tests.sh's set-up)
OUT_SAVE=$OUT
source .gpu/setup.sh >/dev/null
R=$PWD
export SPARKINFER_CP="/tmp/app/*"
export SPARKINFER_TEST_CP="$R/.gpulib/test/classes:$R/.gpulib/test/assertj-core-3.27.3.jar"
export JUNIT_CONSOLE=$R/.gpulib/test/junit-platform-console-standalone-1.14.1.jar
export SPARKINFER_FIXTURES=$R/.gpulib/fixtures
timeout ${TESTS_TIMEOUT:-150} submit/gpu-tests.sh --select-class io.sparkinfer.backend.scripted.FusedPrefillGpuTest 2>&1 \
  | grep -v "^\s*at \|WARN" > $OUT_SAVE/tests-one.log
