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
 * event log as a timeline) and {@code jfr_top.py} (a flight recording's samples per thread). Skipped without
 * {@code python3} (CI installs it).
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
