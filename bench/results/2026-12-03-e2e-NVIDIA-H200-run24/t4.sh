#!/usr/bin/env bash
# session 12, call T4: the GPU tests on the current code (the sizing changes since run19)
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
TESTS_TIMEOUT=540 bench/gpu/tests.sh > /dev/null 2>&1
grep -E "tests (successful|failed|found)|agreement|agree|MethodSource|✘" $OUT/tests.log | head -40
