#!/usr/bin/env bash
# Spark SQL over the job's tables, printed tab-separated with a header line.
#
#   submit/sql.sh [--view NAME=PATH]... [--file FILE.sql] ["SQL"]...
#
# Each --view registers a table (a directory of Parquet, JSON lines or CSV files; file:, hdfs:, s3a:) under
# NAME. Values print as text, null as NULL, arrays as [a, b]; tabs and newlines inside values as \t and \n.
# Example: submit/sql.sh --view c=target/demo/completions-... "SELECT id, completion FROM c LIMIT 5"
# Environment: SPARKINFER_SQL_CONF, extra JVM -D flags (e.g. -Dspark.hadoop.fs.s3a.endpoint=...).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/spark.sh"

if [[ $# -eq 0 || "$1" == "-h" || "$1" == "--help" ]]; then
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'
  exit 0
fi
sparkinfer_ensure_build
# shellcheck disable=SC2086
exec "$(sparkinfer_java)" "${SPARKINFER_JAVA_MODULE_OPTS[@]}" -Xmx"${SPARKINFER_DRIVER_MEMORY:-2g}" \
  -Dlog4j2.configurationFile="$SPARKINFER_REPO/conf/log4j2.properties" \
  -Dspark.master="local[*]" -Dspark.ui.enabled=false -Dspark.sql.shuffle.partitions=4 \
  ${SPARKINFER_SQL_CONF:-} \
  -cp "$(sparkinfer_app_classpath):$(sparkinfer_spark_classpath)" io.sparkinfer.jobs.SqlRunner "$@"
