package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** submit/infer.sh and submit/sql.sh as a person runs them, each in its own JVM. */
@Tag("slow")
class ScriptsTest {

  static final Map<String, String> ENV = Map.of("SPARKINFER_DRIVER_MEMORY", "1g");

  @TempDir
  Path tmp;

  @Test
  void inferThenSqlFromTheShell() {
    String out = tmp.resolve("completions").toString();
    String input = TestSupport.writeJsonl(tmp.resolve("prompts.jsonl"), Map.of("a", "def add(a, b):", "b", ""))
        .toString();
    Shell.Result infer = Shell.run(ENV, 240, List.of("submit/infer.sh", "--master", "local[2]",
        "--model", TestSupport.tinyModel().toString(), "--input", input, "--output", out, "--max-new-tokens", "4",
        "--conf", "spark.sql.shuffle.partitions=2"));
    assertThat(infer.status()).as("infer.sh: %s", infer).isZero();
    assertThat(infer.stdout()).contains("succeeded").contains("1 ok | 1 error").contains(out);

    Shell.Result sql = Shell.run(ENV, 240, List.of("submit/sql.sh", "--view", "c=" + out, "--view",
        "r=" + out + "/_job_runs", "SELECT id, finish_reason, error_code, completion_tokens FROM c ORDER BY id",
        "SELECT rows, ok_rows, model_loads FROM r"));
    assertThat(sql.status()).as("sql.sh: %s", sql).isZero();
    assertThat(sql.stdout().lines().toList()).containsExactly(
        "id\tfinish_reason\terror_code\tcompletion_tokens",
        "a\tlength\tNULL\t4",
        "b\terror\tempty_prompt\t0",
        "",
        "rows\tok_rows\tmodel_loads",
        "2\t1\t1");
  }

  /**
   * submit/lib/spark.sh's class-data sharing options for a class path: the first run writes the archive as it exits
   * (a marker keeps a second run from writing it at the same time: that one runs without), later runs use it; a jar
   * changed is another archive; a directory on the class path, or SPARKINFER_CDS=false, means none.
   */
  @Test
  void classDataSharingWritesAnArchiveOnceThenUsesIt() throws java.io.IOException {
    Path a = java.nio.file.Files.writeString(tmp.resolve("a.jar"), "a");
    Path b = java.nio.file.Files.writeString(tmp.resolve("b.jar"), "b");
    Path dir = tmp.resolve("cds");
    String cp = a + ":" + b;
    String options = "set -euo pipefail; source submit/lib/spark.sh; echo \"[$(sparkinfer_cds_options \"$1\")]\"";
    Map<String, String> env = Map.of("SPARKINFER_CDS_DIR", dir.toString(), "SPARKINFER_CDS", "true");
    java.util.function.BiFunction<Map<String, String>, String, String> run = (e, path) -> {
      Shell.Result r = Shell.run(e, 30, List.of("bash", "-c", options, "options", path));
      assertThat(r.status()).as("%s", r).isZero();
      return r.stdout().strip();
    };

    String first = run.apply(env, cp);
    assertThat(first).startsWith("[-XX:ArchiveClassesAtExit=" + dir).contains(".jsa").contains("-Xlog:cds=off");
    String archive = first.substring(first.indexOf('=') + 1, first.indexOf(' '));
    assertThat(run.apply(env, cp)).as("another run is writing it").isEqualTo("[]");
    java.nio.file.Files.writeString(Path.of(archive), "written");
    assertThat(run.apply(env, cp)).startsWith("[-XX:SharedArchiveFile=" + archive + " ");
    try (var left = java.nio.file.Files.list(dir)) {
      assertThat(left.map(p -> p.getFileName().toString())).as("the marker gone once the archive is there")
          .containsExactly(Path.of(archive).getFileName().toString());
    }
    java.nio.file.Files.writeString(b, "b, rebuilt");
    String rebuilt = run.apply(env, cp);
    assertThat(rebuilt).startsWith("[-XX:ArchiveClassesAtExit=").doesNotContain(archive);
    assertThat(run.apply(env, cp + ":" + tmp)).as("a directory on the class path").isEqualTo("[]");
    assertThat(run.apply(Map.of("SPARKINFER_CDS_DIR", dir.toString(), "SPARKINFER_CDS", "false"), cp))
        .isEqualTo("[]");

    // markers of any class path: one older than an hour is a run that died, and goes; a recent one stays
    Path stale = java.nio.file.Files.createDirectory(dir.resolve("0123456789abcdef0123.writing"));
    assertThat(stale.toFile().setLastModified(System.currentTimeMillis() - 2 * 3600_000L)).isTrue();
    Path recent = java.nio.file.Files.createDirectory(dir.resolve("fedcba9876543210fedc.writing"));
    run.apply(env, cp);
    assertThat(stale).doesNotExist();
    assertThat(recent).exists();
  }

  /**
   * Dynamic archives build on the JVM's base archive of its own classes: a JVM without one (a jlink'd runtime made
   * without --generate-cds-archive) gets no options, and a line on stderr that says how to add it.
   */
  @Test
  void classDataSharingNeedsTheJvmsBaseArchive() throws java.io.IOException {
    Path a = java.nio.file.Files.writeString(tmp.resolve("a.jar"), "a");
    Path home = tmp.resolve("jre");
    Path server = java.nio.file.Files.createDirectories(home.resolve("lib/server"));
    Path launcher = java.nio.file.Files.createDirectories(home.resolve("bin")).resolve("java");
    java.nio.file.Files.writeString(launcher, "#!/bin/sh\nexit 0\n");
    assertThat(launcher.toFile().setExecutable(true)).isTrue();
    String options = "set -euo pipefail; source submit/lib/spark.sh; echo \"[$(sparkinfer_cds_options \"$1\")]\"";
    Map<String, String> env = Map.of("SPARKINFER_CDS_DIR", tmp.resolve("cds").toString(), "SPARKINFER_CDS", "true",
        "JAVA_HOME", home.toString());

    Shell.Result none = Shell.run(env, 30, List.of("bash", "-c", options, "options", a.toString()));
    assertThat(none.status()).as("%s", none).isZero();
    assertThat(none.stdout().strip()).isEqualTo("[]");
    assertThat(none.stderr()).contains("no base archive").contains("-Xshare:dump");

    java.nio.file.Files.writeString(server.resolve("classes.jsa"), "base");
    Shell.Result some = Shell.run(env, 30, List.of("bash", "-c", options, "options", a.toString()));
    assertThat(some.status()).as("%s", some).isZero();
    assertThat(some.stdout().strip()).startsWith("[-XX:ArchiveClassesAtExit=");
    assertThat(some.stderr()).doesNotContain("base archive");
  }

  /**
   * infer.sh with class-data sharing on a class path of jars: the first run writes a real archive, the second runs
   * with it, both giving the same completions.
   */
  @Test
  void inferRunsWithTheArchiveItsFirstRunWrote() throws java.io.IOException {
    // the job's and the engine's classes as jars (a build that stopped at the tests has only their directories)
    Path target = TestSupport.repo().resolve("jobs/target/classpath");
    List<String> app = new java.util.ArrayList<>(List.of(
        jarOf(TestSupport.repo().resolve("jobs/target/classes"), tmp.resolve("jobs.jar")).toString()));
    for (String entry : java.nio.file.Files.readString(target.resolve("app.classpath")).strip().split(":")) {
      Path p = Path.of(entry);
      app.add(java.nio.file.Files.isDirectory(p) ? jarOf(p, tmp.resolve(app.size() + ".jar")).toString() : entry);
    }
    Path dir = tmp.resolve("cds");
    Map<String, String> env = Map.of("SPARKINFER_DRIVER_MEMORY", "1g", "SPARKINFER_CDS", "true",
        "SPARKINFER_CDS_DIR", dir.toString(),
        "SPARKINFER_APP_CP", String.join(":", app),
        "SPARKINFER_SPARK_CP", java.nio.file.Files.readString(target.resolve("spark.classpath")).strip());
    String input = TestSupport.writeJsonl(tmp.resolve("prompts.jsonl"), Map.of("a", "def add(a, b):")).toString();
    List<String> lines = new java.util.ArrayList<>();
    long written = 0;
    for (int run = 1; run <= 2; run++) {
      String out = tmp.resolve("out-" + run).toString();
      Shell.Result infer = Shell.run(env, 240, List.of("submit/infer.sh", "--master", "local[1]", "--model",
          TestSupport.tinyModel().toString(), "--input", input, "--output", out, "--max-new-tokens", "4"));
      assertThat(infer.status()).as("run %d: %s", run, infer).isZero();
      assertThat(infer.stderr()).as("no class-data sharing messages").doesNotContain("[cds]");
      Path archive;
      try (var files = java.nio.file.Files.list(dir)) {
        archive = files.filter(p -> p.toString().endsWith(".jsa")).findFirst().orElseThrow();
      }
      assertThat(java.nio.file.Files.size(archive)).as("a real archive").isGreaterThan(1L << 20);
      if (run == 1) {
        written = java.nio.file.Files.getLastModifiedTime(archive).toMillis();
      } else {
        assertThat(java.nio.file.Files.getLastModifiedTime(archive).toMillis()).as("used, not written again")
            .isEqualTo(written);
      }
      // read here, not through sql.sh (inferThenSqlFromTheShell runs that): two JVMs fewer
      lines.add(TestSupport.spark().read().parquet(out).orderBy("id").select("id", "completion").collectAsList()
          .toString());
    }
    assertThat(lines.get(0)).as("run 1's completions").contains("[a,");
    assertThat(lines.get(1)).isEqualTo(lines.get(0));
  }

  /** A jar of the files under {@code dir}. */
  private static Path jarOf(Path dir, Path jar) throws java.io.IOException {
    try (var out = new java.util.jar.JarOutputStream(java.nio.file.Files.newOutputStream(jar));
        var files = java.nio.file.Files.walk(dir)) {
      for (Path f : files.filter(java.nio.file.Files::isRegularFile).toList()) {
        out.putNextEntry(new java.util.jar.JarEntry(dir.relativize(f).toString().replace('\\', '/')));
        java.nio.file.Files.copy(f, out);
        out.closeEntry();
      }
    }
    return jar;
  }

  /**
   * submit/lib/common.sh's jar lookup under the scripts' {@code set -euo pipefail}: with no jar built it prints
   * nothing and the script goes on to build one (it once exited 1 silently there, on CI's clean clone), and it
   * never picks the test jar.
   */
  @Test
  void engineJarLookupSurvivesStrictModeWithNothingBuilt() throws java.io.IOException {
    Path home = tmp.resolve("home");
    java.nio.file.Files.createDirectories(home.resolve("common/target"));
    String lookup = "set -euo pipefail; HOME_DIR=\"$1\"; source submit/lib/common.sh; jar=$(engine_jar); echo \"[$jar]\"";
    Shell.Result none = Shell.run(Map.of(), 30, List.of("bash", "-c", lookup, "lookup", home.toString()));
    assertThat(none.status()).as("%s", none).isZero();
    assertThat(none.stdout().strip()).isEqualTo("[]");

    java.nio.file.Files.writeString(home.resolve("common/target/sparkinfer-common-1.0-tests.jar"), "");
    Path jar = java.nio.file.Files.writeString(home.resolve("common/target/sparkinfer-common-1.0.jar"), "");
    Shell.Result built = Shell.run(Map.of(), 30, List.of("bash", "-c", lookup, "lookup", home.toString()));
    assertThat(built.status()).as("%s", built).isZero();
    assertThat(built.stdout().strip()).isEqualTo("[" + jar + "]");
  }

  @Test
  void severalPropertiesFilesApplyInOrderLaterKeysWinning() throws java.io.IOException {
    Path two = java.nio.file.Files.writeString(tmp.resolve("two.properties"), "spark.sparkinfer.max-new-tokens=2\n");
    Path three = java.nio.file.Files.writeString(tmp.resolve("three.properties"),
        "spark.sparkinfer.max-new-tokens=3\nspark.sql.shuffle.partitions=2\n");
    String out = tmp.resolve("completions").toString();
    String input = TestSupport.writeJsonl(tmp.resolve("prompts.jsonl"), Map.of("a", "def add(a, b):")).toString();
    Shell.Result infer = Shell.run(ENV, 240, List.of("submit/infer.sh", "--master", "local[1]",
        "--properties-file", "conf/local.properties", "--properties-file", two.toString(),
        "--properties-file=" + three, "--model", TestSupport.tinyModel().toString(), "--input", input,
        "--output", out, "--ignore-eos"));
    assertThat(infer.status()).as("infer.sh: %s", infer).isZero();
    assertThat(TestSupport.spark().read().parquet(out).select("completion_tokens").collectAsList())
        .as("the last file's max-new-tokens").extracting(r -> r.getInt(0)).containsExactly(3);

    Shell.Result missing = Shell.run(ENV, 60, List.of("submit/infer.sh", "--properties-file", "conf/local.properties",
        "--properties-file", tmp.resolve("nope.properties").toString()));
    assertThat(missing.status()).isEqualTo(BatchInferenceJob.EXIT_USAGE);
    assertThat(missing.stderr()).contains("--properties-file " + tmp.resolve("nope.properties") + ": no such file");
  }

  @Test
  void nativesThatAreNotAPackagedArchiveGiveClearErrors() throws java.io.IOException {
    Shell.Result none = Shell.run(ENV, 60, List.of("submit/infer.sh", "--master", "local[1]", "--natives",
        tmp.resolve("missing.tar.gz").toString()));
    assertThat(none.status()).isEqualTo(BatchInferenceJob.EXIT_USAGE);
    assertThat(none.stderr()).contains("--natives " + tmp.resolve("missing.tar.gz") + ": no such file");

    Path notAnArchive = java.nio.file.Files.writeString(tmp.resolve("libtorch.so"), "x");
    Shell.Result wrongKind = Shell.run(ENV, 60, List.of("submit/infer.sh", "--natives", notAnArchive.toString()));
    assertThat(wrongKind.status()).isEqualTo(BatchInferenceJob.EXIT_USAGE);
    assertThat(wrongKind.stderr()).contains("must be a .tar.gz, .tgz, .tar or .zip of submit/package-natives.sh");

    Path emptyTar = tmp.resolve("empty.tar");
    assertThat(Shell.run(Map.of(), 30, List.of("tar", "-cf", emptyTar.toString(), "-T", "/dev/null")).status())
        .isZero();
    Shell.Result noProperties = Shell.run(ENV, 60, List.of("submit/infer.sh", "--natives", emptyTar.toString()));
    assertThat(noProperties.status()).isEqualTo(BatchInferenceJob.EXIT_USAGE);
    assertThat(noProperties.stderr()).contains("no libtorch.properties with version and flavor in it");

    Shell.Result badFlavor = Shell.run(Map.of(), 60, List.of("submit/package-natives.sh", "--flavor", "rocm"));
    assertThat(badFlavor.status()).isEqualTo(2);
    assertThat(badFlavor.stderr()).contains("--flavor must be cu124 or cpu, got 'rocm'");
    Shell.Result notLibtorch = Shell.run(Map.of(), 60, List.of("submit/package-natives.sh", "--flavor", "cpu",
        "--jar", TestSupport.repo().resolve("jobs/target/classpath/app.classpath").toString(), "--output",
        tmp.resolve("x.tar").toString()));
    assertThat(notLibtorch.status()).isEqualTo(1);
    assertThat(notLibtorch.stderr()).contains("is not DJL's cpu libtorch for linux-x86_64");
  }

  @Test
  void badOptionsMissingModelAndUnreadableInputGiveClearErrors() {
    Shell.Result badOption = Shell.run(ENV, 120, List.of("submit/infer.sh", "--max-new-tokenz", "3"));
    assertThat(badOption.status()).isEqualTo(BatchInferenceJob.EXIT_USAGE);
    assertThat(badOption.stderr()).contains("error: unknown option --max-new-tokenz").contains("--help");

    Shell.Result noModel = Shell.run(ENV, 120, List.of("submit/infer.sh", "--model", tmp.resolve("nope").toString(),
        "--output", tmp.resolve("o1").toString()));
    assertThat(noModel.status()).isEqualTo(BatchInferenceJob.EXIT_USAGE);
    assertThat(noModel.stderr()).contains("error: --model " + tmp.resolve("nope") + ": no such directory");

    Shell.Result noInput = Shell.run(ENV, 180, List.of("submit/infer.sh", "--master", "local[1]", "--model",
        TestSupport.tinyModel().toString(), "--input", tmp.resolve("missing.jsonl").toString(), "--output",
        tmp.resolve("o2").toString()));
    assertThat(noInput.status()).isEqualTo(BatchInferenceJob.EXIT_USAGE);
    assertThat(noInput.stderr()).contains("error: --input " + tmp.resolve("missing.jsonl") + ": no such file or directory");

    Shell.Result help = Shell.run(ENV, 120, List.of("submit/infer.sh", "--help"));
    assertThat(help.status()).isZero();
    assertThat(help.stdout()).contains("--max-prompt-tokens").contains("SPARK_HOME");

    Shell.Result badSql = Shell.run(ENV, 120, List.of("submit/sql.sh", "--view", "broken"));
    assertThat(badSql.status()).isEqualTo(2);
    assertThat(badSql.stderr()).contains("--view takes NAME=PATH");
  }
}
