package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The host-side profiling tools of {@code bench/} on small inputs written here: {@code spark_events.py} (a Spark
 * event log as a timeline), {@code spark_stages.py} (its stages' tasks), {@code jfr_top.py} (a flight recording's samples per thread), {@code alternate_table.py}
 * and {@code gpu/alternate.sh} (builds of the job set against each other). Skipped without {@code python3} (CI
 * installs it).
 */
class BenchToolsTest {

  @TempDir
  Path tmp;

  @Test
  void sparkEventsPrintsEachJobFromTheApplicationsStartWithItsStages() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("eventlog_v2_local-1"));
    Files.write(dir.resolve("events_1_local-1"), List.of(
        "{\"Event\":\"SparkListenerApplicationStart\",\"Timestamp\":1000}",
        "{\"Event\":\"SparkListenerJobStart\",\"Job ID\":0,\"Submission Time\":3500,\"Stage IDs\":[0],"
            + "\"Properties\":{\"spark.job.description\":\"sparkinfer: read in.jsonl (count lines)\"}}",
        "{\"Event\":\"SparkListenerTaskStart\",\"Stage ID\":0,\"Task Info\":{\"Launch Time\":3600}}",
        "{\"Event\":\"SparkListenerStageCompleted\",\"Stage Info\":{\"Stage ID\":0,\"Stage Name\":\"collect at X.java:1\","
            + "\"Number of Tasks\":16}}",
        "{\"Event\":\"SparkListenerJobEnd\",\"Job ID\":0,\"Completion Time\":4000}"), StandardCharsets.UTF_8);
    Files.write(tmp.resolve("events_2_local-1"), List.of()); // outside the directory: not read
    String out = python(null, "bench/spark_events.py", dir.toString());
    assertThat(out).contains("   2.50    3.00   0.50  0: sparkinfer: read in.jsonl (count lines) [collect x16 @   2.60]");

    Path compressed = Files.createDirectories(tmp.resolve("eventlog_v2_local-2"));
    Files.write(compressed.resolve("events_1_local-2.zstd"), new byte[] {1});
    assertThat(python(null, "bench/spark_events.py", compressed.toString())).contains("spark.eventLog.compress=false");
  }

  @Test
  void sparkStagesPrintsEachStagesTasksWithTheirMeanRunAndCpuTimes() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("eventlog_v2_local-3"));
    String task = "{\"Event\":\"SparkListenerTaskEnd\",\"Stage ID\":1,\"Task Info\":{\"Launch Time\":%d,"
        + "\"Finish Time\":%d},\"Task Metrics\":{\"Executor Deserialize Time\":%d,\"Executor Run Time\":%d,"
        + "\"Executor CPU Time\":%d,\"JVM GC Time\":0}}";
    Files.write(dir.resolve("events_1_local-3"), List.of(
        "{\"Event\":\"SparkListenerApplicationStart\",\"Timestamp\":1000}",
        String.format(task, 3000, 4000, 50, 900, 200_000_000L),
        String.format(task, 3100, 4200, 70, 1100, 400_000_000L),
        "{\"Event\":\"SparkListenerStageCompleted\",\"Stage Info\":{\"Stage ID\":1,\"Stage Name\":"
            + "\"collect at PlanSummary.java:67\",\"Submission Time\":2900,\"Completion Time\":4300}}"),
        StandardCharsets.UTF_8);
    assertThat(python(null, "bench/spark_stages.py", dir.toString())).contains("stage 1 collect at PlanSummary.j: "
        + "submitted 1.90 done 3.30 | 2 tasks launched 2.00-2.10, finished 3.00-3.20 | mean ms: deserialize 60, run "
        + "1000 (max 1100), cpu 300, gc 0, shuffle write 0, fetch wait 0");
  }

  @Test
  void jfrTopSumsEachThreadsSamplesBySelfAndInclusiveMethod() throws Exception {
    String frame = "{\"method\":{\"type\":{\"name\":\"%s\"},\"name\":\"%s\"}}";
    String sample = "{\"type\":\"jdk.%s\",\"values\":{\"sampledThread\":{\"javaName\":\"main\"},"
        + "\"stackTrace\":{\"frames\":[%s]}}}";
    String tokenize = String.format(frame, "ai/djl/huggingface/tokenizers/jni/TokenizersLibrary", "encode") + ","
        + String.format(frame, "io/sparkinfer/generate/Generator", "prepare");
    String wait = String.format(frame, "ai/djl/pytorch/jni/PyTorchLibrary", "torchTo") + ","
        + String.format(frame, "io/sparkinfer/generate/Generator", "decodeStep");
    String json = "{\"recording\":{\"events\":[" + String.format(sample, "NativeMethodSample", tokenize) + ","
        + String.format(sample, "NativeMethodSample", tokenize) + "," + String.format(sample, "NativeMethodSample", wait)
        + "," + String.format(sample, "ExecutionSample", wait) + "]}}";
    String out = python(json, "bench/jfr_top.py", "--top", "5");
    assertThat(out).contains("4 samples in 1 threads", "== main [native]: 3 samples", "== main [java]: 1 samples")
        .contains("     2  66.7%  ai.djl.huggingface.tokenizers.jni.TokenizersLibrary.encode")
        .contains("     2  66.7%  io.sparkinfer.generate.Generator.prepare")
        .contains("     1  33.3%  io.sparkinfer.generate.Generator.decodeStep");
  }

  @Test
  void alternateTableSetsEachRunAgainstGenerateInTheOrderTheyRanAndMeansEachBuild() throws Exception {
    String timeline = String.join("\n", "start s   end s  job s  job: description [stages: name x tasks, first task s]",
        "   0.90    1.20   0.30  0: sparkinfer: read /tmp/p.jsonl (count lines) [collect x16 @   0.92]",
        "   1.70    2.70   1.00  1: sparkinfer r1: plan (token counts) [collect x16 @   1.71]",
        "   2.95   21.00  18.05  2: sparkinfer r1: generate and write /tmp/o (commit 1/1) [save x16 @   2.96; save x16 @"
            + "   3.30]", "");
    writeRun("head-1", 45000, 20.0, timeline);
    writeRun("new-1", 50000, 19.5, timeline);
    writeRun("new-2", 51000, 19.4, null); // no timeline: its columns are '-'
    writeRun("old-1", 40000, 22.0, null); // an earlier call's run in the same directory
    Files.writeString(tmp.resolve("order.txt"), "new-1\nhead-1\nnew-2\n");
    Files.createDirectories(tmp.resolve("generate"));
    Files.writeString(tmp.resolve("generate/generate-fp8.log"), "generate: done: 8 prompts (8 ok, 0 errors), 9 prompt "
        + "tokens, 1024 generated tokens in 1s (50000.0 tokens/s; prefill 0.50s, decode 0.40s; batch sizes 8) -> x\n");
    String out = python(null, "bench/alternate_table.py", tmp.toString());
    assertThat(out).contains("| new-1 | 50,000 | 1.000 | 19.5 | 3.0 | 0.90 | 0.30 | 0.50 | 1.00 | 0.25 | 0.35 | 0.4 "
        + "| 1.50 |", "| head-1 | 45,000 | 0.900 | 20.0 |", "| new-2 | 51,000 | 1.020 | 19.4 | 3.0 | - | - | - | - |")
        .contains("new: mean 50,500 completion tokens/s over 2 runs (1.010 of generate.sh), 50,000-51,000",
            "head: mean 45,000 completion tokens/s over 1 runs (0.900 of generate.sh)");
    assertThat(out).as("only the runs order.txt names").doesNotContain("old-1", "40,000");
    assertThat(out.indexOf("| new-1 |")).as("the runs in the order they ran").isLessThan(out.indexOf("| head-1 |"));
    assertThat(out.indexOf("| head-1 |")).isLessThan(out.indexOf("| new-2 |"));
  }

  /**
   * {@code gpu/alternate.sh} with a stand-in for {@code gpu/e2e.sh}: each round runs every build once, the order turned
   * by one place a round, each build with its own JVM options, after a warm-up job of the first build over 256 prompts
   * that stays out of the order and the table; every run's files and the table end up in the tarball.
   */
  @Test
  void alternateRunsEveryBuildEachRoundInATurningOrderAndPacksTheRuns() throws Exception {
    assumeTrue(hasPython(), "no python3 on PATH: the bench tools are checked where it is (CI installs it)");
    Path a = Files.createDirectories(tmp.resolve("classes-a"));
    Path b = Files.createDirectories(tmp.resolve("classes-b"));
    Path calls = tmp.resolve("calls.txt");
    Path fake = tmp.resolve("fake-e2e.sh");
    Files.writeString(fake, String.join("\n", "#!/usr/bin/env bash",
        "echo \"$(basename \"$E2E_JOBS_CLASSES\") ${E2E_PROMPTS:-8192} $E2E_JOB_PRECISION $E2E_JOB_JAVA_OPTS\" >> " + calls,
        "tokens=$([ \"$(basename \"$E2E_JOBS_CLASSES\")\" = classes-a ] && echo 40000.0 || echo 44000.0)",
        "printf '  throughput   %s completion tokens/s | 1 rows/s\\n  wall time    20.0 s\\n' $tokens > \"$OUT/job.log\"",
        "echo '17:00:00 INFO org.apache.spark.SparkContext: dropped' >> \"$OUT/job.log\"", ""));
    Path out = tmp.resolve("out");
    Path work = tmp.resolve("work");
    ProcessBuilder pb = new ProcessBuilder("bash", "bench/gpu/alternate.sh", "a=" + a, "b=" + b)
        .directory(TestSupport.repo().toFile()).redirectErrorStream(true);
    pb.environment().putAll(java.util.Map.of("OUT", out.toString(), "ALT_WORK", work.toString(), "ALT_E2E",
        "bash " + fake, "ALT_ROUNDS", "2", "ALT_GENERATE", "0", "ALT_NAME", "ab", "ALT_JAVA_OPTS_b", "-Dx=1"));
    Process p = pb.start();
    String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as(log).isZero();

    assertThat(Files.readAllLines(work.resolve("order.txt"))).containsExactly("a-1", "b-1", "b-2", "a-2");
    List<String> jobs = Files.readAllLines(calls);
    assertThat(jobs).hasSize(5);
    assertThat(jobs.get(0)).as("the warm-up").isEqualTo("classes-a 256 fp8 ");
    assertThat(jobs.get(1)).startsWith("classes-a 8192 fp8 -Dspark.eventLog.enabled=true").doesNotContain("-Dx=1");
    assertThat(jobs.get(2)).startsWith("classes-b 8192 fp8 ").endsWith("-Dx=1");
    assertThat(log).containsPattern("warm-up \\(not measured\\): +throughput 40000.0").doesNotContain("| warm");
    assertThat(Files.readString(work.resolve("a-1/job.log"))).contains("throughput   40000.0").doesNotContain("dropped");
    assertThat(log).contains("| b-2 | 44,000 |", "a: mean 40,000 completion tokens/s over 2 runs");
    Process list = new ProcessBuilder("tar", "tzf", out.resolve("ab.tgz").toString()).redirectErrorStream(true).start();
    String packed = new String(list.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(list.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(packed).contains("work/a-1/job.log", "work/b-2/job.log", "work/table.md", "work/order.txt");
  }

  private void writeRun(String name, double tokens, double wall, String timeline) throws IOException {
    Path run = Files.createDirectories(tmp.resolve(name));
    Files.writeString(run.resolve("job.log"), String.join("\n",
        "12:00:01 INFO ExecutorEngines: loaded qwen2: 28 layers [fp8, gpu(0)] in 1.50 s (config and tokenizer 0.2 s)",
        String.format(java.util.Locale.ROOT, "  throughput   %.1f completion tokens/s | 400.00 rows/s", tokens),
        String.format(java.util.Locale.ROOT, "  wall time    %.1f s (generation 17.0 s summed over tasks)", wall),
        "  timeline     first inference task at 3.0 s | inference 17.4 s (tasks 227.4 s: waiting for engines 0.4; "
            + "generators generating 17.0, idle 0.3) | batch sizes 4096", ""));
    if (timeline != null) {
      Files.writeString(run.resolve("timeline.txt"), timeline);
    }
  }

  /** Runs a script of the repository with {@code stdin}; its output (stdout and stderr). */
  private static String python(String stdin, String script, String... args) throws IOException, InterruptedException {
    assumeTrue(hasPython(), "no python3 on PATH: the bench tools are checked where it is (CI installs it)");
    List<String> command = new java.util.ArrayList<>(List.of("python3", TestSupport.repo().resolve(script).toString()));
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    if (stdin != null) {
      p.getOutputStream().write(stdin.getBytes(StandardCharsets.UTF_8));
    }
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    return out;
  }

  private static boolean hasPython() {
    try {
      return new ProcessBuilder("python3", "--version").start().waitFor(20, TimeUnit.SECONDS);
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }
}
