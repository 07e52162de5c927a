#!/usr/bin/env bash
# session 12, call E10 (same machine as E8, E9): the fp8 job twice with Spark's event log, the second with a flight
# recording of the driver, to see where its 6-7 s before the first inference task go on this machine
mkdir -p /tmp/app && cp .gpulib/appjar/*.jar /tmp/app/
source .gpu/setup.sh > /dev/null
source bench/gpu/lib.sh
source submit/lib/spark.sh
cat > /tmp/jfr.jfc <<'JFC'
<?xml version="1.0" encoding="UTF-8"?>
<configuration version="2.0">
  <event name="jdk.ExecutionSample"><setting name="enabled">true</setting><setting name="period">10 ms</setting></event>
  <event name="jdk.ClassLoad"><setting name="enabled">false</setting></event>
</configuration>
JFC
for i in 1 2; do
  rm -rf /tmp/e2e-out /tmp/events && mkdir -p /tmp/events
  JFR=""
  [ $i = 2 ] && JFR="-XX:FlightRecorderOptions=stackdepth=512 -XX:StartFlightRecording=filename=/tmp/job.jfr,settings=/tmp/jfr.jfc"
  timeout 100 java "${SPARKINFER_JAVA_MODULE_OPTS[@]}" $JFR -Xmx24g -XX:MaxDirectMemorySize=64g \
    -Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file:/tmp/events -Dspark.eventLog.compress=false \
    -Dai.djl.offline=true -Dlog4j2.configurationFile=$R/conf/log4j2.properties \
    -cp "$R/.gpulib/jobs-classes:/tmp/app/*:/tmp/sparkjars/*" org.apache.spark.deploy.SparkSubmit \
    --master "local[*]" --properties-file $R/conf/local.properties --conf spark.driver.memory=24g \
    --class io.sparkinfer.jobs.BatchInferenceJob spark-internal \
    --model $M --input /tmp/e2e-prompts.jsonl --output /tmp/e2e-out --device gpu --precision fp8 \
    --max-new-tokens 128 --ignore-eos --layout threads=1 --progress-seconds 10 2>&1 \
    | grep -v " WARN \|^\s*at \|^WARNING\|INFO org.apache.\|^\s*launch\|PtEngine\|^SLF4J" > $OUT/job-fp8-$i.log
  echo "job fp8 $i: $(grep -hE 'throughput|wall time|timeline' $OUT/job-fp8-$i.log | tr -s ' ' | tr '\n' ' ')"
  python3 bench/spark_events.py /tmp/events/* > $OUT/job-timeline-$i.txt 2>&1
  cut -c1-150 $OUT/job-timeline-$i.txt
done
/tmp/g/jre/bin/jfr print --stack-depth 300 --json /tmp/job.jfr 2>/dev/null | gzip > $OUT/job-jfr.json.gz || ls /tmp/g
nproc; lscpu | grep -E "Model name|MHz" | head -3
