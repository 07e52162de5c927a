# Shared by the Spark scripts (infer.sh, sql.sh, local-cluster.sh): the repository, the build's class paths,
# Java flags. Source it; it defines no behaviour on its own.

SPARKINFER_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SPARKINFER_JOBS_TARGET="$SPARKINFER_REPO/jobs/target"
SPARKINFER_MAIN_CLASS="io.sparkinfer.jobs.BatchInferenceJob"

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

# Builds the engine, the job classes, their class path files and the job jar when any is missing.
sparkinfer_ensure_build() {
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

# What a Spark installation provides: Spark, Hadoop, hadoop-aws and its AWS SDK.
sparkinfer_spark_classpath() {
  cat "$SPARKINFER_JOBS_TARGET/classpath/spark.classpath"
}

# What the job adds: its classes, the engine, DJL, CPU libtorch.
sparkinfer_app_classpath() {
  echo "$SPARKINFER_JOBS_TARGET/classes:$(cat "$SPARKINFER_JOBS_TARGET/classpath/app.classpath")"
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
