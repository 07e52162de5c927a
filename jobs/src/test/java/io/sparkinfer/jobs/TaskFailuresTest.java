package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.SamplingParams;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.spark.TaskFailedReason;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Task failures on {@code local[2,4]} (Spark's local mode with up to 4 attempts per task), injected by the job's
 * test hook ({@link InjectedFault}): a retried task leaves each id once in the table and in the counts; a task
 * that fails every attempt fails the run cleanly.
 */
@Tag("slow")
class TaskFailuresTest {

  static final int MAX_NEW = BatchInferenceJobLocalTest.MAX_NEW;
  static Map<String, String> rows;
  static Map<String, Completion> reference;

  @TempDir
  Path tmp;

  /** The reference prompts and a duplicate, so the counts cover deduplication too. */
  @BeforeAll
  static void referenceCompletions() {
    rows = new LinkedHashMap<>(TestSupport.referenceInput());
    rows.put("dup-of-p2", rows.get("p2"));
    reference = BatchInferenceJobLocalTest.engineCompletions(rows, SamplingParams.GREEDY, 0);
  }

  /** This test's own session, with its fault. */
  SparkSession session;

  @AfterEach
  void stopSession() {
    if (session != null) {
      session.stop();
    }
    TestSupport.stopSpark();
  }

  /** A local[2,4] session with the fault hook's keys set; the shared local[2] session is stopped first. */
  private SparkSession sessionWithFault(Map<String, String> fault) {
    TestSupport.stopSpark();
    SparkSession.Builder b = SparkSession.builder()
        .master("local[2,4]")
        .appName("sparkinfer-task-failures-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1");
    fault.forEach(b::config);
    session = b.getOrCreate();
    return session;
  }

  /** Collects the failure reasons of failed task attempts. */
  private static final class FailedTasks extends SparkListener {
    final List<String> reasons = Collections.synchronizedList(new ArrayList<>());

    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
      if (end.reason() instanceof TaskFailedReason failed) {
        reasons.add(failed.toErrorString());
      }
    }
  }

  @Test
  void aTaskThatFailsAfterWritingPartOfItsOutputIsRetriedAndEachIdIsWrittenAndCountedOnce() throws Exception {
    SparkSession spark = sessionWithFault(Map.of(InjectedFault.ACTION, "fail", InjectedFault.ATTEMPTS, "first",
        InjectedFault.AFTER_ROWS, "2"));
    FailedTasks failed = new FailedTasks();
    spark.sparkContext().addSparkListener(failed);
    Path input = TestSupport.writeJsonl(tmp.resolve("in.jsonl"), rows);
    String out = tmp.resolve("out").toString();
    ExecutorEngines.closeAll(); // an engine an earlier test left in this JVM would make this run's load none

    JobResult result = BatchInference.run(spark, TestSupport.options("--model", TestSupport.tinyModel().toString(),
        "--input", input.toString(), "--output", out, "--max-new-tokens", "" + MAX_NEW, "--batch-size", "2",
        "--partitions", "2"));

    spark.sparkContext().listenerBus().waitUntilEmpty();
    assertThat(failed.reasons).as("both inference tasks failed their first attempt, after handing 2 rows to the writer")
        .hasSize(2).allSatisfy(r -> assertThat(r).contains("injected fault").contains("attempt 0").contains("after 2 rows"));
    assertThat(result.succeeded()).isTrue();

    List<Row> written = spark.read().parquet(out).collectAsList();
    assertThat(written).extracting(r -> r.<String>getAs("id")).as("each id exactly once, none from a failed attempt")
        .containsExactlyInAnyOrderElementsOf(rows.keySet());
    Map<String, Row> byPrompt = new LinkedHashMap<>();
    long okRows = 0;
    for (Row r : written) {
      assertThat(r.<String>getAs("completion")).as("completion of %s", r.<String>getAs("id"))
          .isEqualTo(reference.get(r.<String>getAs("id")).text());
      byPrompt.putIfAbsent(r.getAs("prompt"), r);
      okRows += "error".equals(r.getAs("finish_reason")) ? 0 : 1;
    }
    long promptTokens = byPrompt.values().stream().mapToLong(r -> r.<Integer>getAs("prompt_tokens")).sum();
    long completionTokens = byPrompt.values().stream().mapToLong(r -> r.<Integer>getAs("completion_tokens")).sum();

    Row run = spark.read().parquet(out + "/_job_runs").first();
    assertThat(run.<String>getAs("status")).isEqualTo("succeeded");
    assertThat(run.<Long>getAs("rows")).isEqualTo(rows.size());
    assertThat(run.<Long>getAs("ok_rows")).as("rows counted once, not again for the failed attempts").isEqualTo(okRows);
    assertThat(run.<Long>getAs("error_rows")).isZero();
    assertThat(run.<Long>getAs("requests")).as("one request per distinct prompt").isEqualTo(byPrompt.size());
    assertThat(run.<Long>getAs("deduplicated_rows")).isEqualTo(rows.size() - byPrompt.size());
    assertThat(run.<Long>getAs("prompt_tokens")).isEqualTo(promptTokens);
    assertThat(run.<Long>getAs("completion_tokens")).isEqualTo(completionTokens);
    assertThat(run.<Integer>getAs("model_loads"))
        .as("the one load in this JVM, reported by a retry though the attempt that loaded it failed").isEqualTo(1);
    assertThat(run.<Integer>getAs("executors")).isEqualTo(1);
  }

  @Test
  void whenEveryAttemptFailsTheRunFailsWithTheCauseAndLeavesNoTableAtTheOutput() throws IOException {
    SparkSession spark = sessionWithFault(Map.of(InjectedFault.ACTION, "fail", InjectedFault.ATTEMPTS, "every",
        InjectedFault.AFTER_ROWS, "1"));
    FailedTasks failed = new FailedTasks();
    spark.sparkContext().addSparkListener(failed);
    Path input = TestSupport.writeJsonl(tmp.resolve("in.jsonl"), rows);
    Path out = tmp.resolve("out");
    ByteArrayOutputStream stdout = new ByteArrayOutputStream();
    ByteArrayOutputStream stderr = new ByteArrayOutputStream();
    int checks = ModelLocation.localChecks();

    int status = BatchInferenceJob.run(new String[] {"--model", TestSupport.tinyModel().toString(), "--input",
        input.toString(), "--output", out.toString(), "--max-new-tokens", "" + MAX_NEW, "--partitions", "2",
        "--run-id", "doomed"}, new PrintStream(stdout, true, StandardCharsets.UTF_8),
        new PrintStream(stderr, true, StandardCharsets.UTF_8)); // the job takes the session above and stops it
    assertThat(ModelLocation.localChecks() - checks)
        .as("the model's files checked once, before Spark started: the run takes that check").isEqualTo(1);

    String err = stderr.toString(StandardCharsets.UTF_8);
    assertThat(status).as("exit status; stderr: %s", err).isEqualTo(BatchInferenceJob.EXIT_FAILED);
    assertThat(err).as("the error says the retries ran out and names the task's own exception")
        .contains("error: the job failed: run doomed failed:").contains("failed 4 times")
        .contains("io.sparkinfer.jobs.InjectedFault$InjectedFaultException: injected fault: task failed on purpose");
    assertThat(err.lines().filter(l -> l.startsWith("error:")).findFirst().orElseThrow())
        .as("one line, no stack trace").doesNotContain("\tat ");
    assertThat(failed.reasons).as("4 attempts of the partition that used up its retries")
        .filteredOn(r -> r.contains("injected fault")).hasSizeGreaterThanOrEqualTo(4);

    List<String> entries;
    try (Stream<Path> s = Files.list(out)) {
      entries = s.map(p -> p.getFileName().toString()).sorted().toList();
    }
    assertThat(entries).as("no _SUCCESS, and the job_runs table (hidden from readers)").doesNotContain("_SUCCESS")
        .contains("_job_runs");
    // A task attempt still running when the job aborts may leave _temporary behind (hidden, like _job_runs).
    assertThat(entries).as("no data files: only hidden entries").allMatch(e -> e.startsWith("_") || e.startsWith("."));
    SparkSession reader = TestSupport.spark();
    assertThatThrownBy(() -> reader.read().parquet(out.toString()).count()).as("readers see no table there")
        .hasMessageContaining("Unable to infer schema for Parquet");
    Row run = reader.read().parquet(out + "/_job_runs").first();
    assertThat(run.<String>getAs("run_id")).isEqualTo("doomed");
    assertThat(run.<String>getAs("status")).isEqualTo("failed");
    assertThat(run.<String>getAs("error")).contains("failed 4 times").contains("injected fault").doesNotContain("\n");
    assertThat(run.<Long>getAs("ok_rows")).as("nothing was written, nothing counted").isZero();
    assertThat(run.<Integer>getAs("commits")).isZero();

    JobResult rerun = BatchInference.run(reader, TestSupport.options("--model", TestSupport.tinyModel().toString(),
        "--input", input.toString(), "--output", out.toString(), "--max-new-tokens", "" + MAX_NEW));
    assertThat(rerun.succeeded()).as("the failed run left the path free for the next one").isTrue();
    assertThat(reader.read().parquet(out.toString()).count()).isEqualTo(rows.size());
  }
}
