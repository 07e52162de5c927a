# Shared by the Spark scripts (infer.sh, sql.sh, local-cluster.sh): the repository, the build's class paths,
# Java flags. Source it; it defines no behaviour on its own.

SPARKINFER_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SPARKINFER_JOBS_TARGET="$SPARKINFER_REPO/jobs/target"

# The JVM flags Spark 4 needs on Java 17+ (org.apache.spark.launcher.JavaModuleOptions), for JVMs this
# project starts itself (driver, standalone master and workers); spark-submit adds them on its own.
SPARKINFER_JAVA_MODULE_OPTS=(
  -XX:+IgnoreUnrecognizedVMOptions
  --add-modules=jdk.incubator.vector
  --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/sun.nio.cs=ALL-UNNAMED
  --add-opens=java.base/sun.security.action=ALL-UNNAMED
  --add-opens=java.base/sun.util.calendar=ALL-UNNAMED
  --add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED
  -Djdk.reflect.useDirectMethodHandle=false
  -Dio.netty.tryReflectionSetAccessible=true
)

# Everything this project starts locally binds to loopback (and Spark stops warning about the host name).
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"

sparkinfer_die() {
  echo "error: $*" >&2
  exit 2
}

sparkinfer_java() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    echo "$JAVA_HOME/bin/java"
  else
    command -v java || sparkinfer_die "no java on PATH (Java 17 or 21 is needed)"
  fi
}

# Builds the engine, the job classes, their class path files and the job jar when any is missing. With
# SPARKINFER_APP_CP and SPARKINFER_SPARK_CP set (a machine without Maven, e.g. a GPU machine the jars were
# copied to), nothing is built.
sparkinfer_ensure_build() {
  if [[ -n "${SPARKINFER_APP_CP:-}" && -n "${SPARKINFER_SPARK_CP:-}" ]]; then
    return 0
  fi
  if [[ -f "$SPARKINFER_JOBS_TARGET/classpath/spark.classpath" && -f "$SPARKINFER_JOBS_TARGET/classpath/app.classpath" \
        && -f "$SPARKINFER_JOBS_TARGET/classes/io/sparkinfer/jobs/BatchInferenceJob.class" \
        && ( "${1:-}" != "--jar" || -n "$(sparkinfer_job_jar_or_empty)" ) ]]; then
    return 0
  fi
  echo "building sparkinfer (mvn package -DskipTests -pl jobs -am; once) ..." >&2
  (cd "$SPARKINFER_REPO" && mvn -q -B package -DskipTests -pl jobs -am) >&2 \
    || sparkinfer_die "the build failed; run 'mvn -B package -DskipTests' in $SPARKINFER_REPO to see why"
}

sparkinfer_job_jar_or_empty() {
  ls "$SPARKINFER_JOBS_TARGET"/sparkinfer-jobs-*-job.jar 2>/dev/null | head -n 1
}

# What a Spark installation provides: Spark, Hadoop, hadoop-aws and its AWS SDK ($SPARKINFER_SPARK_CP if set).
sparkinfer_spark_classpath() {
  if [[ -n "${SPARKINFER_SPARK_CP:-}" ]]; then
    echo "$SPARKINFER_SPARK_CP"
  else
    cat "$SPARKINFER_JOBS_TARGET/classpath/spark.classpath"
  fi
}

# What the job adds: its classes, the engine, DJL, CPU libtorch ($SPARKINFER_APP_CP if set).
sparkinfer_app_classpath() {
  if [[ -n "${SPARKINFER_APP_CP:-}" ]]; then
    echo "$SPARKINFER_APP_CP"
  else
    echo "$SPARKINFER_JOBS_TARGET/classes:$(cat "$SPARKINFER_JOBS_TARGET/classpath/app.classpath")"
  fi
}

# The CPU libtorch jar (for --jars when the cluster has no libtorch of its own).
sparkinfer_native_cpu_jar() {
  tr ':' '\n' < "$SPARKINFER_JOBS_TARGET/classpath/app.classpath" | grep 'pytorch-native-cpu' | head -n 1
}

# A SPARK_HOME-like directory whose jars/ links the jars of spark.classpath: what standalone workers
# build executor class paths from. Prints its path.
sparkinfer_spark_home() {
  local home="${SPARKINFER_SPARK_HOME_DIR:-$SPARKINFER_JOBS_TARGET/spark-home}"
  local stamp="$home/.classpath"
  if [[ ! -f "$stamp" ]] || ! cmp -s "$stamp" "$SPARKINFER_JOBS_TARGET/classpath/spark.classpath"; then
    rm -rf "$home"
    mkdir -p "$home/jars" "$home/conf" "$home/launcher/target/scala-2.13"
    local jar
    tr ':' '\n' < "$SPARKINFER_JOBS_TARGET/classpath/spark.classpath" | while read -r jar; do
      [[ -n "$jar" ]] && ln -sf "$jar" "$home/jars/$(basename "$jar")"
    done
    cp "$SPARKINFER_REPO/conf/log4j2.properties" "$home/conf/log4j2.properties"
    cp "$SPARKINFER_JOBS_TARGET/classpath/spark.classpath" "$stamp"
  fi
  echo "$home"
}

# Splits a launcher's command line: Spark's own options (--master, --conf K=V, --properties-file F) into
# SPARKINFER_MASTER, SPARKINFER_PROPS and the array SPARKINFER_SPARK_ARGS; -h/--help into SPARKINFER_HELP=1;
# everything else, in order, into the array SPARKINFER_JOB_ARGS.
sparkinfer_parse_args() {
  SPARKINFER_MASTER="" SPARKINFER_PROPS="" SPARKINFER_HELP=0
  SPARKINFER_SPARK_ARGS=() SPARKINFER_JOB_ARGS=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --master) [[ $# -ge 2 ]] || sparkinfer_die "--master needs a value"; SPARKINFER_MASTER="$2"; shift 2 ;;
      --master=*) SPARKINFER_MASTER="${1#*=}"; shift ;;
      --conf) [[ $# -ge 2 ]] || sparkinfer_die "--conf needs K=V"; SPARKINFER_SPARK_ARGS+=(--conf "$2"); shift 2 ;;
      --conf=*) SPARKINFER_SPARK_ARGS+=(--conf "${1#*=}"); shift ;;
      --properties-file) [[ $# -ge 2 ]] || sparkinfer_die "--properties-file needs a file"; SPARKINFER_PROPS="$2"; shift 2 ;;
      --properties-file=*) SPARKINFER_PROPS="${1#*=}"; shift ;;
      -h|--help) SPARKINFER_HELP=1; shift ;;
      *) SPARKINFER_JOB_ARGS+=("$1"); shift ;;
    esac
  done
}

# Whether SPARKINFER_JOB_ARGS has the option NAME (--NAME or --NAME=...).
sparkinfer_has_arg() {
  local a
  for a in ${SPARKINFER_JOB_ARGS[@]+"${SPARKINFER_JOB_ARGS[@]}"}; do
    [[ "$a" == "--$1" || "$a" == "--$1="* ]] && return 0
  done
  return 1
}

# Builds what is missing, then prints the script's header comment and MAIN_CLASS's --help.
sparkinfer_help() {
  local script="$1" main="$2"
  sparkinfer_ensure_build
  sed -n '2,/^set -euo/p' "$script" | grep '^#' | sed 's/^# \{0,1\}//'
  echo
  "$(sparkinfer_java)" -cp "$(sparkinfer_app_classpath):$(sparkinfer_spark_classpath)" "$main" --help
}

# Runs MAIN_CLASS with SPARKINFER_JOB_ARGS on Spark: $SPARK_HOME/bin/spark-submit with the job jar when
# SPARK_HOME is set (CPU libtorch added with --jars unless PYTORCH_LIBRARY_PATH is set); otherwise the project's
# own Spark jars, conf/local.properties and --master local[*] unless given. Does not return.
sparkinfer_launch() {
  local main="$1" submit_args resource master props classpath
  if [[ -n "${SPARK_HOME:-}" ]]; then
    sparkinfer_ensure_build --jar
    submit_args=(--class "$main")
    [[ -n "$SPARKINFER_MASTER" ]] && submit_args+=(--master "$SPARKINFER_MASTER")
    [[ -n "$SPARKINFER_PROPS" ]] && submit_args+=(--properties-file "$SPARKINFER_PROPS")
    if [[ -z "${PYTORCH_LIBRARY_PATH:-}" ]]; then
      submit_args+=(--jars "$(sparkinfer_native_cpu_jar)")
    fi
    exec "$SPARK_HOME/bin/spark-submit" "${submit_args[@]}" ${SPARKINFER_SPARK_ARGS[@]+"${SPARKINFER_SPARK_ARGS[@]}"} \
      "$(sparkinfer_job_jar_or_empty)" ${SPARKINFER_JOB_ARGS[@]+"${SPARKINFER_JOB_ARGS[@]}"}
  fi
  sparkinfer_ensure_build
  master="${SPARKINFER_MASTER:-local[*]}"
  props="${SPARKINFER_PROPS:-$SPARKINFER_REPO/conf/local.properties}"
  classpath="$(sparkinfer_app_classpath):$(sparkinfer_spark_classpath)"
  submit_args=(--master "$master" --properties-file "$props" --class "$main")
  if [[ "$master" == local* ]]; then
    resource="spark-internal" # the driver is the executor: the job's classes are on its class path already
  else
    # A cluster (e.g. submit/local-cluster.sh): its executors get the job jar and CPU libtorch from the driver.
    sparkinfer_ensure_build --jar
    resource="$(sparkinfer_job_jar_or_empty)"
    submit_args+=(--jars "$(sparkinfer_native_cpu_jar)")
  fi
  exec "$(sparkinfer_java)" "${SPARKINFER_JAVA_MODULE_OPTS[@]}" -Xmx"${SPARKINFER_DRIVER_MEMORY:-4g}" \
    -Dai.djl.offline=true -Dlog4j2.configurationFile="${SPARKINFER_LOG_CONFIG:-$SPARKINFER_REPO/conf/log4j2.properties}" \
    -cp "$classpath" org.apache.spark.deploy.SparkSubmit "${submit_args[@]}" \
    ${SPARKINFER_SPARK_ARGS[@]+"${SPARKINFER_SPARK_ARGS[@]}"} "$resource" ${SPARKINFER_JOB_ARGS[@]+"${SPARKINFER_JOB_ARGS[@]}"}
}
