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

# Builds the engine, the job classes, their class path files and (with --jar) the job jar when any is missing or
# the jar is older than a compiled class. With
# SPARKINFER_APP_CP and SPARKINFER_SPARK_CP set (a machine without Maven, e.g. a GPU machine the jars were
# copied to), nothing is built.
sparkinfer_ensure_build() {
  if [[ -n "${SPARKINFER_APP_CP:-}" && -n "${SPARKINFER_SPARK_CP:-}" ]]; then
    return 0
  fi
  if [[ -f "$SPARKINFER_JOBS_TARGET/classpath/spark.classpath" && -f "$SPARKINFER_JOBS_TARGET/classpath/app.classpath" \
        && -f "$SPARKINFER_JOBS_TARGET/classes/io/sparkinfer/jobs/BatchInferenceJob.class" \
        && ( "${1:-}" != "--jar" || -n "$(sparkinfer_job_jar_current_or_empty)" ) ]]; then
    return 0
  fi
  echo "building sparkinfer (mvn package -DskipTests -pl jobs -am; once) ..." >&2
  (cd "$SPARKINFER_REPO" && mvn -q -B package -DskipTests -pl jobs -am) >&2 \
    || sparkinfer_die "the build failed; run 'mvn -B package -DskipTests' in $SPARKINFER_REPO to see why"
}

sparkinfer_job_jar_or_empty() {
  ls "$SPARKINFER_JOBS_TARGET"/sparkinfer-jobs-*-job.jar 2>/dev/null | head -n 1
}

# Prints jar $1 when no class under the directories $2... was compiled after it; nothing otherwise (or without $1).
sparkinfer_jar_current_or_empty() {
  local jar="$1" dir
  shift
  [[ -n "$jar" ]] || return 0
  for dir in "$@"; do
    if [[ -d "$dir" && -n "$(find "$dir" -type f -name "*.class" -newer "$jar" -print -quit)" ]]; then
      return 0
    fi
  done
  echo "$jar"
}

# The job jar when no class of the engine or the job was compiled after it (a stale jar would ship old code to
# executors); empty otherwise.
sparkinfer_job_jar_current_or_empty() {
  sparkinfer_jar_current_or_empty "$(sparkinfer_job_jar_or_empty)" "$SPARKINFER_JOBS_TARGET/classes" \
    "$SPARKINFER_REPO/common/target/classes"
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

# The jobs module's own jar (not the -job.jar shipped to executors) when no job class was compiled after it; empty
# otherwise (the class path then names jobs/target/classes).
sparkinfer_jobs_jar_current_or_empty() {
  sparkinfer_jar_current_or_empty "$(ls "$SPARKINFER_JOBS_TARGET"/sparkinfer-jobs-*.jar 2>/dev/null \
    | grep -v -e '-job\.jar$' -e '-tests\.jar$' | head -n 1)" "$SPARKINFER_JOBS_TARGET/classes"
}

# Application class-data sharing for a driver JVM this project starts (JDK 13+ dynamic archives): the first run with
# a class path writes the classes it loaded to an archive as it exits (a few seconds more, once), and later runs with
# the same jars and JVM map them instead of finding, reading and verifying each in some 270 jars: on the 2-core
# development machine the demo job's process took 7.2 s against 10.0, its first inference task at 4.0 s against 5.2
# (three runs each, alternated). Prints the JVM options for class path $1, or nothing: with SPARKINFER_CDS=false, where
# the class path names a directory (dynamic archives take jars only), while another run writes the archive, or when the
# JVM has no base archive of its own classes to build on (a JDK ships one; a jlink'd runtime made without
# --generate-cds-archive has none: a line on stderr says how to add it).
# Archives go to SPARKINFER_CDS_DIR (default ~/.cache/sparkinfer/cds), one per class path, jar sizes and times, and JVM.
sparkinfer_cds_options() {
  [[ "${SPARKINFER_CDS:-true}" != false ]] || return 0
  local entry key dir archive
  local -a entries
  IFS=: read -ra entries <<< "$1"
  for entry in "${entries[@]}"; do
    [[ "$entry" == *.jar && -f "$entry" ]] || return 0
  done
  # the JVM by its files (starting one to ask its version would cost a JVM start; a JVM refuses another's archive)
  local java server
  java="$(readlink -f "$(sparkinfer_java)")"
  server="$(dirname "$java")/../lib/server"
  if [[ ! -f "$server/classes.jsa" && ! -f "$server/classes_nocoops.jsa" ]]; then
    echo "class-data sharing: off, $java has no base archive (lib/server/classes.jsa) to build on;" \
      "'$java -Xshare:dump' writes one, SPARKINFER_CDS=false silences this" >&2
    return 0
  fi
  key="$( { echo "$1"; echo "$java"; stat -c '%s %Y' "$java" "${entries[@]}"; \
    stat -c '%s %Y' "$(dirname "$java")/../lib/modules" 2>/dev/null; } | sha1sum | cut -c1-20)"
  dir="${SPARKINFER_CDS_DIR:-$HOME/.cache/sparkinfer/cds}"
  archive="$dir/$key.jsa"
  mkdir -p "$dir" 2>/dev/null || return 0
  # the four newest archives stay (each jar rebuilt makes a new one; about 180 MB each)
  ls -t "$dir"/*.jsa 2>/dev/null | tail -n +5 | while read -r old; do [[ "$old" == "$archive" ]] || rm -f "$old"; done
  # a marker older than an hour is a run that died (or one whose JVM wrote nothing)
  find "$dir" -maxdepth 1 -name "*.writing" -mmin +60 -exec rmdir {} + 2>/dev/null || true
  if [[ -f "$archive" ]]; then
    rmdir "$dir/$key.writing" 2>/dev/null
    echo "-XX:SharedArchiveFile=$archive -Xlog:cds=off -Xlog:cds+dynamic=off"
    return 0
  fi
  # one run writes it: the first to make the marker
  if mkdir "$dir/$key.writing" 2>/dev/null; then
    echo "-XX:ArchiveClassesAtExit=$archive -Xlog:cds=off -Xlog:cds+dynamic=off"
  fi
}

# The CPU libtorch jar (for --jars when the cluster has no libtorch of its own).
sparkinfer_native_cpu_jar() {
  tr ':' '\n' < "$SPARKINFER_JOBS_TARGET/classpath/app.classpath" | grep 'pytorch-native-cpu' | head -n 1
}

# A SPARK_HOME-like directory whose jars/ links the jars of spark.classpath ($SPARKINFER_SPARK_CP if set, then a
# list of jar paths, no wildcards): what standalone workers build executor class paths from. Prints its path.
sparkinfer_spark_home() {
  local home="${SPARKINFER_SPARK_HOME_DIR:-$SPARKINFER_JOBS_TARGET/spark-home}"
  local stamp="$home/.classpath"
  if [[ ! -f "$stamp" ]] || ! cmp -s "$stamp" <(sparkinfer_spark_classpath); then
    rm -rf "$home"
    mkdir -p "$home/jars" "$home/conf" "$home/launcher/target/scala-2.13"
    local jar
    sparkinfer_spark_classpath | tr ':' '\n' | while read -r jar; do
      [[ -n "$jar" ]] && ln -sf "$jar" "$home/jars/$(basename "$jar")"
    done
    cp "$SPARKINFER_REPO/conf/log4j2.properties" "$home/conf/log4j2.properties"
    sparkinfer_spark_classpath > "$stamp"
  fi
  echo "$home"
}

# Splits a launcher's command line: Spark's own options (--master, --conf K=V, --properties-file F, repeatable:
# later files win) into SPARKINFER_MASTER, SPARKINFER_PROPS and the array SPARKINFER_SPARK_ARGS; --natives ARCHIVE into
# SPARKINFER_NATIVES; -h/--help into SPARKINFER_HELP=1; everything else, in order, into the array
# SPARKINFER_JOB_ARGS.
sparkinfer_parse_args() {
  SPARKINFER_MASTER="" SPARKINFER_PROPS="" SPARKINFER_HELP=0 SPARKINFER_NATIVES=""
  SPARKINFER_SPARK_ARGS=() SPARKINFER_JOB_ARGS=()
  local files=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --master) [[ $# -ge 2 ]] || sparkinfer_die "--master needs a value"; SPARKINFER_MASTER="$2"; shift 2 ;;
      --master=*) SPARKINFER_MASTER="${1#*=}"; shift ;;
      --conf) [[ $# -ge 2 ]] || sparkinfer_die "--conf needs K=V"; SPARKINFER_SPARK_ARGS+=(--conf "$2"); shift 2 ;;
      --conf=*) SPARKINFER_SPARK_ARGS+=(--conf "${1#*=}"); shift ;;
      --properties-file) [[ $# -ge 2 ]] || sparkinfer_die "--properties-file needs a file"; files+=("$2"); shift 2 ;;
      --properties-file=*) files+=("${1#*=}"); shift ;;
      --natives) [[ $# -ge 2 ]] || sparkinfer_die "--natives needs an archive (submit/package-natives.sh)"; SPARKINFER_NATIVES="$2"; shift 2 ;;
      --natives=*) SPARKINFER_NATIVES="${1#*=}"; shift ;;
      -h|--help) SPARKINFER_HELP=1; shift ;;
      *) SPARKINFER_JOB_ARGS+=("$1"); shift ;;
    esac
  done
  if [[ ${#files[@]} -gt 0 ]]; then
    SPARKINFER_PROPS="$(sparkinfer_merge_properties "${files[@]}")" || exit 2
  fi
}

# The one properties file spark-submit takes, for one or more --properties-file: the file itself, or for several
# their concatenation (a key of a later file wins, as java.util.Properties reads it), written once per content
# under ${TMPDIR:-/tmp}/sparkinfer-UID/. Prints its path.
sparkinfer_merge_properties() {
  local f
  for f in "$@"; do
    [[ -f "$f" ]] || sparkinfer_die "--properties-file $f: no such file"
  done
  if [[ $# -eq 1 ]]; then
    echo "$1"
    return 0
  fi
  local dir="${TMPDIR:-/tmp}/sparkinfer-$(id -u)" merged
  mkdir -p "$dir"
  merged="$dir/properties-$(cat "$@" | sha1sum | cut -c1-16).properties"
  {
    echo "# merged by submit/ from: $*"
    for f in "$@"; do
      echo "# --- $f"
      cat "$f"
      echo
    done
  } > "$merged"
  echo "$merged"
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

# Prints the libtorch.properties of a submit/package-natives.sh archive (.tar.gz, .tgz, .tar or .zip).
sparkinfer_natives_properties() {
  local archive="$1" tmp
  case "$archive" in
    *.zip)
      tmp="$(mktemp -d)"
      (cd "$tmp" && if command -v unzip >/dev/null 2>&1; then unzip -q "$archive" libtorch.properties;
        else "$(dirname "$(readlink -f "$(sparkinfer_java)")")/jar" xf "$archive" libtorch.properties; fi) 2>/dev/null || true
      cat "$tmp/libtorch.properties" 2>/dev/null || true
      rm -rf "$tmp" ;;
    *) tar -xOf "$archive" libtorch.properties 2>/dev/null || true ;;
  esac
}

# With --natives ARCHIVE: the spark-submit arguments that ship it (SPARKINFER_NATIVES_ARGS) and, for a local
# master (where the driver runs the tasks), PYTORCH_LIBRARY_PATH/VERSION/FLAVOR exported for the driver JVM,
# pointing at a copy unpacked under jobs/target/natives. Executors find it as ./libtorch (--archives ARCHIVE#libtorch).
sparkinfer_natives_setup() {
  local master="$1" archive props version flavor dir
  SPARKINFER_NATIVES_ARGS=()
  [[ -n "$SPARKINFER_NATIVES" ]] || return 0
  [[ -f "$SPARKINFER_NATIVES" ]] || sparkinfer_die "--natives $SPARKINFER_NATIVES: no such file"
  archive="$(cd "$(dirname "$SPARKINFER_NATIVES")" && pwd)/$(basename "$SPARKINFER_NATIVES")"
  case "$archive" in
    *.tar.gz|*.tgz|*.tar|*.zip) ;;
    *) sparkinfer_die "--natives $SPARKINFER_NATIVES: must be a .tar.gz, .tgz, .tar or .zip of submit/package-natives.sh" ;;
  esac
  props="$(sparkinfer_natives_properties "$archive")"
  version="$(sed -n 's/^version=//p' <<< "$props")"
  flavor="$(sed -n 's/^flavor=//p' <<< "$props")"
  [[ -n "$version" && -n "$flavor" ]] \
    || sparkinfer_die "--natives $SPARKINFER_NATIVES: no libtorch.properties with version and flavor in it (make it with submit/package-natives.sh)"
  if [[ "$master" == local* ]]; then
    dir="$SPARKINFER_JOBS_TARGET/natives/$(basename "$archive")-$(stat -c %s-%Y "$archive")"
    if [[ ! -f "$dir/lib/libtorch.so" ]]; then
      rm -rf "$SPARKINFER_JOBS_TARGET/natives/$(basename "$archive")"-* # older copies of an archive of that name
      mkdir -p "$dir"
      case "$archive" in
        *.zip) (cd "$dir" && if command -v unzip >/dev/null 2>&1; then unzip -q "$archive";
          else "$(dirname "$(readlink -f "$(sparkinfer_java)")")/jar" xf "$archive"; fi) ;;
        *) tar -C "$dir" -xf "$archive" ;;
      esac
    fi
    export PYTORCH_LIBRARY_PATH="$dir/lib" PYTORCH_VERSION="$version" PYTORCH_FLAVOR="$flavor"
  else
    # Relative to each executor's working directory, where Spark unpacks the archive as ./libtorch.
    SPARKINFER_NATIVES_ARGS=(--archives "$archive#libtorch"
      --conf spark.executorEnv.PYTORCH_LIBRARY_PATH=libtorch/lib
      --conf spark.executorEnv.PYTORCH_VERSION="$version"
      --conf spark.executorEnv.PYTORCH_FLAVOR="$flavor"
      --conf spark.executorEnv.DJL_OFFLINE=true)
  fi
}

# Runs MAIN_CLASS with SPARKINFER_JOB_ARGS on Spark: $SPARK_HOME/bin/spark-submit with the job jar when
# SPARK_HOME is set (CPU libtorch added with --jars unless PYTORCH_LIBRARY_PATH or --natives is set); otherwise the
# project's own Spark jars, conf/local.properties and --master local[*] unless given. With --natives ARCHIVE,
# libtorch comes from the archive (sparkinfer_natives_setup) and no CPU libtorch jar is added. Does not return.
sparkinfer_launch() {
  local main="$1" submit_args resource master props classpath
  if [[ -n "${SPARK_HOME:-}" ]]; then
    sparkinfer_ensure_build --jar
    sparkinfer_natives_setup "$SPARKINFER_MASTER"
    submit_args=(--class "$main")
    [[ -n "$SPARKINFER_MASTER" ]] && submit_args+=(--master "$SPARKINFER_MASTER")
    [[ -n "$SPARKINFER_PROPS" ]] && submit_args+=(--properties-file "$SPARKINFER_PROPS")
    if [[ -z "${PYTORCH_LIBRARY_PATH:-}" && -z "$SPARKINFER_NATIVES" ]]; then
      submit_args+=(--jars "$(sparkinfer_native_cpu_jar)")
    fi
    exec "$SPARK_HOME/bin/spark-submit" "${submit_args[@]}" ${SPARKINFER_NATIVES_ARGS[@]+"${SPARKINFER_NATIVES_ARGS[@]}"} \
      ${SPARKINFER_SPARK_ARGS[@]+"${SPARKINFER_SPARK_ARGS[@]}"} \
      "$(sparkinfer_job_jar_or_empty)" ${SPARKINFER_JOB_ARGS[@]+"${SPARKINFER_JOB_ARGS[@]}"}
  fi
  sparkinfer_ensure_build
  master="${SPARKINFER_MASTER:-local[*]}"
  props="${SPARKINFER_PROPS:-$SPARKINFER_REPO/conf/local.properties}"
  sparkinfer_natives_setup "$master"
  classpath="$(sparkinfer_app_classpath):$(sparkinfer_spark_classpath)"
  local jobs_jar
  jobs_jar="$(sparkinfer_jobs_jar_current_or_empty)"
  if [[ -z "${SPARKINFER_APP_CP:-}" && -n "$jobs_jar" ]]; then # the same classes as a jar: class-data sharing takes jars
    classpath="$jobs_jar:$(cat "$SPARKINFER_JOBS_TARGET/classpath/app.classpath"):$(sparkinfer_spark_classpath)"
  fi
  local -a cds
  read -ra cds <<< "$(sparkinfer_cds_options "$classpath")"
  submit_args=(--master "$master" --properties-file "$props" --class "$main")
  if [[ "$master" == local* ]]; then
    resource="spark-internal" # the driver is the executor: the job's classes are on its class path already
  else
    # A cluster (e.g. submit/local-cluster.sh): its executors get the job jar, and CPU libtorch unless --natives
    # ships one, from the driver. Where nothing was built (SPARKINFER_APP_CP and SPARKINFER_SPARK_CP set, no job
    # jar) it ships neither: spark.executor.extraClassPath must name the job's classes and the engine's jars on the
    # nodes, and libtorch come from their PYTORCH_LIBRARY_PATH or --natives (bench/gpu/cluster.sh).
    sparkinfer_ensure_build --jar
    if [[ -n "${SPARKINFER_APP_CP:-}" && -n "${SPARKINFER_SPARK_CP:-}" && -z "$(sparkinfer_job_jar_or_empty)" ]]; then
      resource="spark-internal"
    else
      resource="$(sparkinfer_job_jar_or_empty)"
      [[ -n "$SPARKINFER_NATIVES" ]] || submit_args+=(--jars "$(sparkinfer_native_cpu_jar)")
    fi
  fi
  exec "$(sparkinfer_java)" "${SPARKINFER_JAVA_MODULE_OPTS[@]}" ${cds[@]+"${cds[@]}"} -Xmx"${SPARKINFER_DRIVER_MEMORY:-4g}" \
    -Dai.djl.offline=true -Dlog4j2.configurationFile="${SPARKINFER_LOG_CONFIG:-$SPARKINFER_REPO/conf/log4j2.properties}" \
    -cp "$classpath" org.apache.spark.deploy.SparkSubmit "${submit_args[@]}" \
    ${SPARKINFER_NATIVES_ARGS[@]+"${SPARKINFER_NATIVES_ARGS[@]}"} \
    ${SPARKINFER_SPARK_ARGS[@]+"${SPARKINFER_SPARK_ARGS[@]}"} "$resource" ${SPARKINFER_JOB_ARGS[@]+"${SPARKINFER_JOB_ARGS[@]}"}
}
