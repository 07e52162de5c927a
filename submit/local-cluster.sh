#!/usr/bin/env bash
# A Spark standalone cluster on 127.0.0.1 from the project's own jars (no Spark download): one master
# and two workers, each worker launching executor JVMs from a SPARK_HOME-like directory whose jars/ links
# the Spark and Hadoop jars of the build.
#
#   submit/local-cluster.sh start    start it (prints the master URL on stdout)
#   submit/local-cluster.sh stop     stop the processes it started (by their recorded pids)
#   submit/local-cluster.sh status   print the master URL when it runs
#
# Then: submit/infer.sh --master spark://127.0.0.1:7077 ...
# Environment: SPARKINFER_CLUSTER_DIR (logs, pids, work dirs; default target/local-cluster),
# SPARKINFER_MASTER_PORT (7077), SPARKINFER_WORKERS (2), SPARKINFER_WORKER_CORES (1),
# SPARKINFER_WORKER_MEMORY (2g), SPARKINFER_WORKER_GPUS (0: GPUs each worker offers, found by
# submit/lib/gpu-discovery.sh through nvidia-smi; with several workers on one machine each offers the same ones).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/spark.sh"

dir="${SPARKINFER_CLUSTER_DIR:-$SPARKINFER_REPO/target/local-cluster}"
port="${SPARKINFER_MASTER_PORT:-7077}"
workers="${SPARKINFER_WORKERS:-2}"
cores="${SPARKINFER_WORKER_CORES:-1}"
memory="${SPARKINFER_WORKER_MEMORY:-2g}"
gpus="${SPARKINFER_WORKER_GPUS:-0}"
url="spark://127.0.0.1:$port"

alive() {
  [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

# Waits until $1 has at least $2 lines matching $3, or fails after $4 seconds or when the process of
# pid file $5 ends.
wait_for_log() {
  local file="$1" count="$2" pattern="$3" timeout="$4" pidfile="$5" waited=0
  while [[ "$(grep -c -- "$pattern" "$file" 2>/dev/null || true)" -lt "$count" ]]; do
    if [[ $waited -ge $((timeout * 10)) ]] || ! alive "$pidfile"; then
      echo "error: no '$pattern' in $file:" >&2
      tail -n 20 "$file" >&2 || true
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

start() {
  if alive "$dir/master.pid"; then
    echo "already running" >&2
    echo "$url"
    return 0
  fi
  sparkinfer_ensure_build
  local home java
  home="$(sparkinfer_spark_home)"
  java="$(sparkinfer_java)"
  mkdir -p "$dir/logs"
  rm -f "$dir"/logs/*.log
  local opts=("${SPARKINFER_JAVA_MODULE_OPTS[@]}" -Xmx512m
    -Dlog4j2.configurationFile="$SPARKINFER_REPO/conf/log4j2.properties")

  SPARK_HOME="$home" "$java" "${opts[@]}" -cp "$home/conf:$home/jars/*" \
    org.apache.spark.deploy.master.Master --host 127.0.0.1 --port "$port" --webui-port 0 \
    > "$dir/logs/master.log" 2>&1 &
  echo $! > "$dir/master.pid"
  wait_for_log "$dir/logs/master.log" 1 "I have been elected leader" 60 "$dir/master.pid" || { stop; exit 1; }

  local worker_opts=()
  if [[ "$gpus" != 0 ]]; then
    [[ "$gpus" =~ ^[0-9]+$ ]] || { echo "error: SPARKINFER_WORKER_GPUS must be a number, got '$gpus'" >&2; stop; exit 2; }
    worker_opts=(-Dspark.worker.resource.gpu.amount="$gpus"
      -Dspark.worker.resource.gpu.discoveryScript="$SPARKINFER_REPO/submit/lib/gpu-discovery.sh")
  fi
  local i
  for ((i = 1; i <= workers; i++)); do
    mkdir -p "$dir/work-$i" "$dir/tmp-$i"
    # The worker builds executor commands from SPARK_HOME/jars; SPARK_SCALA_VERSION spares it a build dir.
    SPARK_HOME="$home" SPARK_SCALA_VERSION=2.13 SPARK_LOCAL_DIRS="$dir/tmp-$i" \
      "$java" "${opts[@]}" ${worker_opts[@]+"${worker_opts[@]}"} -cp "$home/conf:$home/jars/*" \
      org.apache.spark.deploy.worker.Worker --host 127.0.0.1 --cores "$cores" --memory "$memory" \
      --work-dir "$dir/work-$i" --webui-port 0 "$url" \
      > "$dir/logs/worker-$i.log" 2>&1 &
    echo $! > "$dir/worker-$i.pid"
  done
  wait_for_log "$dir/logs/master.log" "$workers" "Registering worker" 90 "$dir/master.pid" || { stop; exit 1; }
  echo "standalone cluster up: $workers workers x $cores core(s), $memory, $gpus GPU(s); logs in $dir/logs" >&2
  echo "$url"
}

stop() {
  local pidfile pid
  for pidfile in "$dir"/worker-*.pid "$dir/master.pid"; do
    [[ -f "$pidfile" ]] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
  echo "stopped" >&2
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if alive "$dir/master.pid"; then echo "$url"; else echo "not running" >&2; exit 1; fi ;;
  *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
