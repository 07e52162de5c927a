#!/usr/bin/env bash
# Packs DJL's libtorch for clusters that cannot download it: the libraries of the unmodified Maven artifact
# ai.djl.pytorch:pytorch-native-FLAVOR:2.5.1:linux-x86_64 (cu124 for GPUs, cpu for CPU-only clusters and tests),
# in an archive that `submit/infer.sh --natives ARCHIVE` ships with spark-submit --archives ARCHIVE#libtorch.
#
#   submit/package-natives.sh [--flavor cu124|cpu] [--jar PATH] [--output FILE]
#
# The archive holds
#   lib/                    every file of the jar's pytorch/FLAVOR/linux-x86_64/, byte for byte (libtorch.so ...)
#   libtorch.properties     version, flavor, classifier and the jar's SHA-1, read back by infer.sh
# so that DJL finds libtorch with PYTORCH_LIBRARY_PATH=libtorch/lib (the archive unpacked as ./libtorch in the
# executors' working directories), PYTORCH_VERSION=2.5.1 and PYTORCH_FLAVOR=FLAVOR (which pick DJL's matching
# JNI library, shipped in the job jar).
#
# --flavor   cu124 (default) or cpu
# --jar      the artifact's jar, e.g. fetched from your Maven mirror; default: the local Maven repository
#            (~/.m2/repository, or $SPARKINFER_M2_REPO), fetched there with Maven when missing
# --output   FILE ending in .tar.gz, .tgz, .tar or .zip (default target/natives/libtorch-2.5.1-FLAVOR-linux-x86_64.tar.gz)
# Prints the archive's path. Exit status: 0 done, 1 the jar cannot be had or is not DJL's libtorch, 2 bad options.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/spark.sh"

version=2.5.1
classifier=linux-x86_64
flavor=cu124
jar=""
output=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --flavor) [[ $# -ge 2 ]] || sparkinfer_die "--flavor needs cu124 or cpu"; flavor="$2"; shift 2 ;;
    --jar) [[ $# -ge 2 ]] || sparkinfer_die "--jar needs a file"; jar="$2"; shift 2 ;;
    --output) [[ $# -ge 2 ]] || sparkinfer_die "--output needs a file"; output="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) sparkinfer_die "unknown option $1 (see --help)" ;;
  esac
done
[[ "$flavor" == cu124 || "$flavor" == cpu ]] || sparkinfer_die "--flavor must be cu124 or cpu, got '$flavor'"
output="${output:-$SPARKINFER_REPO/target/natives/libtorch-$version-$flavor-$classifier.tar.gz}"
case "$output" in
  *.tar.gz|*.tgz|*.tar|*.zip) ;;
  *) sparkinfer_die "--output must end in .tar.gz, .tgz, .tar or .zip (what spark-submit --archives unpacks), got '$output'" ;;
esac

artifact="ai.djl.pytorch:pytorch-native-$flavor:$version:jar:$classifier"
if [[ -z "$jar" ]]; then
  repo="${SPARKINFER_M2_REPO:-$HOME/.m2/repository}"
  jar="$repo/ai/djl/pytorch/pytorch-native-$flavor/$version/pytorch-native-$flavor-$version-$classifier.jar"
  if [[ ! -f "$jar" ]]; then
    echo "fetching $artifact with Maven ..." >&2
    mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get -Dtransitive=false -Dartifact="$artifact" \
      -Dmaven.repo.local="$repo" >&2 || { echo "error: Maven could not fetch $artifact (a mirror: --jar PATH)" >&2; exit 1; }
  fi
fi
[[ -f "$jar" ]] || { echo "error: --jar $jar: no such file" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prefix="pytorch/$flavor/$classifier"
# unzip and zip where installed, else the JDK's jar tool
jar_tool() {
  local tool
  tool="$(dirname "$(readlink -f "$(sparkinfer_java)")")/jar"
  [[ -x "$tool" ]] || { echo "error: neither unzip/zip nor the JDK's jar tool ($tool) is installed" >&2; exit 1; }
  "$tool" "$@"
}
extract() {
  if command -v unzip >/dev/null 2>&1; then
    (cd "$work" && unzip -q "$jar" "$prefix/*" native/lib/pytorch.properties)
  else
    (cd "$work" && jar_tool xf "$jar" "$prefix/" native/lib/pytorch.properties)
  fi
}
if ! extract 2>/dev/null || [[ ! -f "$work/$prefix/libtorch.so" ]]; then
  echo "error: $jar is not DJL's $flavor libtorch for $classifier (no $prefix/libtorch.so in it)" >&2
  exit 1
fi
jar_version="$(sed -n 's/^version=//p' "$work/native/lib/pytorch.properties")"
[[ "$jar_version" == "$version"* ]] \
  || { echo "error: $jar holds libtorch $jar_version; DJL 0.33's JNI needs $version" >&2; exit 1; }

mkdir -p "$work/out/lib"
mv "$work/$prefix"/* "$work/out/lib/"
{
  echo "# DJL's libtorch, unpacked from $artifact (files unmodified)"
  echo "version=$version"
  echo "flavor=$flavor"
  echo "classifier=$classifier"
  echo "jar_version=$jar_version"
  echo "jar_sha1=$(sha1sum "$jar" | cut -d' ' -f1)"
} > "$work/out/libtorch.properties"

mkdir -p "$(dirname "$output")"
output="$(cd "$(dirname "$output")" && pwd)/$(basename "$output")"
rm -f "$output"
case "$output" in
  *.zip)
    if command -v zip >/dev/null 2>&1; then
      (cd "$work/out" && zip -q -r "$output" libtorch.properties lib)
    else
      jar_tool --create --no-manifest --file "$output" -C "$work/out" libtorch.properties -C "$work/out" lib
    fi ;;
  *.tar) tar -C "$work/out" -cf "$output" libtorch.properties lib ;;
  *) tar -C "$work/out" -cf - libtorch.properties lib | gzip -"${SPARKINFER_NATIVES_GZIP_LEVEL:-6}" > "$output" ;;
esac
echo "libtorch $version ($flavor): $(du -h "$output" | cut -f1) in $output" >&2
echo "$output"
