# Shared by the submit/ scripts: where the jars are, and building them when they are missing.
# HOME_DIR must be set to the repository root before sourcing.

# Prints the engine jar's path, or nothing when it is not built (never fails: callers run under set -euo pipefail).
engine_jar() {
  local f
  for f in "$HOME_DIR"/common/target/sparkinfer-common-*.jar; do
    case "$f" in *-tests.jar) ;; *) [ -f "$f" ] && { echo "$f"; return 0; } ;; esac
  done
  return 0
}

# Builds common (and installs it for the jobs module) when its jar or runtime classpath is missing.
ensure_engine_built() {
  local jar
  jar=$(engine_jar)
  if [ -n "${SPARKINFER_REBUILD:-}" ] || [ -z "$jar" ] || [ ! -d "$HOME_DIR/common/target/lib" ] \
      || [ -n "$(find "$HOME_DIR/common/src/main" "$HOME_DIR/common/pom.xml" -newer "$jar" -print -quit 2>/dev/null)" ]; then
    echo "building the engine (mvn package: first run, or sources newer than the jar)..." >&2
    (cd "$HOME_DIR" && mvn -q -B -DskipTests install -pl common -am) >&2
  fi
}

engine_classpath() {
  echo "$(engine_jar):$HOME_DIR/common/target/lib/*"
}
