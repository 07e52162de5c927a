#!/usr/bin/env bash
# session 13, call E13b: the fp16 job with generate.sh fp16 (class-data sharing on, as submit/infer.sh runs it); then
# the fp8 job alone with the jobs' classes before (old: main at 7310701) and after (new) this session's start-up changes
# (adaptive execution off for the wave's write; planning's tokenizer loaded by the driver's preload), alternated
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
mkdir -p /tmp/o7/fp16
OUT=/tmp/o7/fp16 E2E_JOB_PRECISION=fp16 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 timeout 150 \
  bench/gpu/e2e.sh > /tmp/o7/fp16/e2e.out 2>&1
grep -E '"(job_e2e|job_wall|job_process|generate_e2e|generate_prefill_s|job_first|job_over|generate_process|job_generate_s)' /tmp/o7/fp16/e2e.json
job() {  # $1 label, $2 classes directory
  mkdir -p /tmp/o7/$1
  OUT=/tmp/o7/$1 E2E_JOBS_CLASSES=$2 E2E_GENERATE=0 E2E_FP8=0 E2E_PADDED=0 E2E_UNFUSED=0 E2E_SHARED=0 E2E_DECODE=0 \
    E2E_JOB_PRECISION=fp8 timeout 100 bench/gpu/e2e.sh > /tmp/o7/$1/e2e.out 2>&1
  echo "$1: process $(grep -h '"job_process_wall_s"' /tmp/o7/$1/e2e.json | tr -d ' ,') | $(grep -hE 'throughput|wall time|timeline' /tmp/o7/$1/job.log | tr -s ' ' | tr '\n' ' ')"
}
job fp8-old-1 $PWD/.gpulib/jobs-classes-old
job fp8-new-1 $PWD/.gpulib/jobs-classes
job fp8-old-2 $PWD/.gpulib/jobs-classes-old
job fp8-new-2 $PWD/.gpulib/jobs-classes
for f in $(find /tmp/o7 -name "*.log"); do grep -vE "INFO org\.apache\.|^\s*launch|PtEngine|^SLF4J" $f > $f.tmp; mv $f.tmp $f; done
tar czf $OUT/e13b.tgz -C /tmp o7
