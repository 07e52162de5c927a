package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.ErrorCode;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.SamplingParams;
import io.sparkinfer.model.Precision;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The job end to end on local[2] with the tiny fixture checkpoint, checked against the engine itself. */
@Tag("slow")
class BatchInferenceJobLocalTest {

  static final int MAX_NEW = 8;
  static final String LONG_PROMPT = "def f(x):\n    return x\n".repeat(40);

  static Map<String, String> rows;
  static Map<String, Completion> greedyReference;

  @TempDir
  Path tmp;

  /** The input: the 8 reference prompts, a duplicate of one, and three prompts that cannot run. */
  @BeforeAll
  static void referenceCompletions() {
    rows = new LinkedHashMap<>(TestSupport.referenceInput());
    rows.put("dup-of-p3", rows.get("p3"));
    rows.put("empty", "");
    rows.put("null", null);
    rows.put("too-long", LONG_PROMPT);
    greedyReference = engineCompletions(rows, SamplingParams.GREEDY, 0);
  }

  /** What the engine gives for the same prompts, called directly, one request per id. */
  static Map<String, Completion> engineCompletions(Map<String, String> input, SamplingParams sampling, long seed) {
    List<GenerationRequest> requests = new ArrayList<>();
    for (Map.Entry<String, String> e : input.entrySet()) {
      if (e.getValue() != null && !e.getValue().isEmpty() && !e.getValue().equals(LONG_PROMPT)) {
        SamplingParams s = sampling.isGreedy() ? sampling : new SamplingParams(sampling.temperature(),
            sampling.topK(), sampling.topP(), SamplingParams.requestSeed(seed, e.getKey()));
        requests.add(new GenerationRequest(e.getKey(), e.getValue(), MAX_NEW, s, List.of(), false));
      }
    }
    try (LlmEngine engine = LlmEngine.load(EngineOptions.of(TestSupport.tinyModel(), Precision.FP32, "cpu"))) {
      Map<String, Completion> out = new HashMap<>();
      for (Completion c : engine.generate(requests, 3)) {
        out.put(c.id(), c);
      }
      return out;
    }
  }

  @Test
  void answersEveryIdOnceWithTheEnginesCompletionsAndErrorRowsForBadPrompts() {
    SparkSession spark = TestSupport.spark();
    Path input = TestSupport.writeJsonl(tmp.resolve("in/prompts.jsonl"), rows);
    String out = tmp.resolve("out").toString();
    JobResult result = BatchInference.run(spark, TestSupport.options("--model", TestSupport.tinyModel().toString(),
        "--input", input.toString(), "--output", out, "--max-new-tokens", "" + MAX_NEW, "--batch-size", "2",
        "--max-prompt-tokens", "64", "--progress-seconds", "1", "--device", "auto"));

    List<Row> written = spark.read().parquet(out).collectAsList();
    assertThat(written).extracting(r -> r.<String>getAs("id")).as("each input id exactly once")
        .containsExactlyInAnyOrderElementsOf(rows.keySet());
    Map<String, Row> byId = new HashMap<>();
    written.forEach(r -> byId.put(r.getAs("id"), r));
    for (Map.Entry<String, Completion> e : greedyReference.entrySet()) {
      Row r = byId.get(e.getKey());
      Completion c = e.getValue();
      assertThat(r.<String>getAs("completion")).as("completion of %s", e.getKey()).isEqualTo(c.text());
      assertThat(r.<scala.collection.Seq<Long>>getAs("output_token_ids").mkString(","))
          .as("tokens of %s", e.getKey()).isEqualTo(join(c.outputTokenIds()));
      assertThat(r.<Integer>getAs("prompt_tokens")).isEqualTo(c.promptTokens());
      assertThat(r.<Integer>getAs("completion_tokens")).isEqualTo(c.completionTokens());
      assertThat(r.<String>getAs("finish_reason")).isEqualTo(c.finishReason().label());
      assertThat(r.<String>getAs("precision")).isEqualTo("fp32");
      assertThat(r.<String>getAs("device")).isEqualTo("cpu");
      assertThat(r.<String>getAs("executor_id")).isEqualTo("driver");
      assertThat(r.<String>getAs("run_id")).isEqualTo(result.runId());
    }
    assertThat(byId.get("dup-of-p3").<String>getAs("completion")).isEqualTo(byId.get("p3").getAs("completion"));
    assertThat(byId.get("empty").<String>getAs("error_code")).isEqualTo(ErrorCode.EMPTY_PROMPT);
    assertThat(byId.get("null").<String>getAs("error_code")).isEqualTo(ErrorCode.EMPTY_PROMPT);
    assertThat(byId.get("too-long").<String>getAs("error_code")).isEqualTo(ErrorCode.PROMPT_TOO_LONG);
    assertThat(byId.get("too-long").<String>getAs("error_message")).contains("--max-prompt-tokens 64");
    assertThat(byId.get("too-long").<String>getAs("finish_reason")).isEqualTo("error");

    assertThat(result.rows()).isEqualTo(12);
    assertThat(result.plannedErrorRows()).isEqualTo(3);
    assertThat(result.errorRows()).isEqualTo(3);
    assertThat(result.okRows()).isEqualTo(9);
    assertThat(result.requests()).as("the duplicate greedy prompt is computed once").isEqualTo(8);
    assertThat(result.deduplicatedRows()).isEqualTo(1);
    assertThat(result.loadsByExecutor()).as("one model load in the one local executor").containsExactly(
        Map.entry("driver", 1));

    List<Row> runs = spark.read().parquet(out + "/_job_runs").collectAsList();
    assertThat(runs).hasSize(1);
    assertThat(runs.get(0).<String>getAs("status")).isEqualTo("succeeded");
    assertThat(runs.get(0).<Long>getAs("requests")).isEqualTo(8L);
    assertThat(runs.get(0).<Integer>getAs("model_loads")).isEqualTo(1);
    assertThat(runs.get(0).<String>getAs("backend")).as("what the engine resolved --backend auto to on a CPU")
        .isEqualTo("eager");
    assertThat(result.options().device()).isEqualTo("auto");
    assertThat(runs.get(0).<String>getAs("device")).as("what the engine resolved --device auto to on a CPU")
        .isEqualTo("cpu");
    assertThat(result.summary()).contains("fp32, eager backend, 1 load(s)");
    assertThat(runs.get(0).<String>getAs("batch_sizes")).as("--batch-size 2, recorded").isEqualTo("2");
    assertTimelineAddsUp(runs.get(0), 1);
  }

  @Test
  void jobRunsSaysWhereTheTimeWentAndWhichBatchSizesAutoChose() {
    SparkSession spark = TestSupport.spark();
    Path input = TestSupport.writeJsonl(tmp.resolve("timeline/prompts.jsonl"), rows);
    String out = tmp.resolve("timeline-out").toString();
    JobResult result = BatchInference.run(spark, TestSupport.options("--model", TestSupport.tinyModel().toString(),
        "--input", input.toString(), "--output", out, "--max-new-tokens", "" + MAX_NEW, "--batch-size", "auto",
        "--partitions", "2", "--layout", "threads=2"));
    assertThat(result.succeeded()).isTrue();
    Row run = spark.read().parquet(out + "/_job_runs").first();
    assertThat(run.<String>getAs("batch_size")).isEqualTo("auto");
    String chosen = run.getAs("batch_sizes");
    assertThat(chosen).as("the sizes auto chose, recorded").matches("\\d+(,\\d+)*");
    for (String size : chosen.split(",")) {
      assertThat(Integer.parseInt(size)).as("never wider than the requests there are").isBetween(1, rows.size());
    }
    assertTimelineAddsUp(run, 2);
    assertThat(result.summary()).contains("first inference task at", "batch sizes " + chosen);
  }

  /**
   * The timeline columns against the wall time, and generation + idle (the generators' time while they ran, shared by
   * the tasks running at once) within the inference span times the generators, and within the tasks' own time.
   */
  static void assertTimelineAddsUp(Row run, int generators) {
    double wall = run.getAs("wall_s");
    double first = run.getAs("first_inference_s");
    double span = run.getAs("inference_span_s");
    double tasks = run.getAs("inference_task_s");
    double idle = run.getAs("engine_idle_s");
    double generate = run.getAs("generate_s");
    double wait = run.getAs("engine_wait_s");
    assertThat(first).as("planning comes before the first inference task").isGreaterThan(0).isLessThan(wall);
    assertThat(first + span).as("inference ends before the run does").isLessThanOrEqualTo(wall + 0.01);
    assertThat(span).isGreaterThan(0);
    assertThat(tasks).isGreaterThan(0);
    assertThat(generate).isGreaterThan(0);
    assertThat(idle).isGreaterThanOrEqualTo(0);
    assertThat(wait).isGreaterThanOrEqualTo(0).isLessThan(tasks);
    double slack = 0.05 + 0.01 * tasks;
    assertThat(generate + idle).as("the generators' time while they ran: generating or idle, one run at a time")
        .isLessThanOrEqualTo(span * generators + slack)
        .isLessThanOrEqualTo((tasks - wait) * generators + slack);
  }

  @Test
  void sampledCompletionsMatchTheEngineWithTheDerivedSeedsInJsonl() {
    SparkSession spark = TestSupport.spark();
    Map<String, String> input = TestSupport.referenceInput();
    Path file = TestSupport.writeJsonl(tmp.resolve("in.jsonl"), input);
    String out = tmp.resolve("sampled").toString();
    BatchInference.run(spark, TestSupport.options("--model", TestSupport.tinyModel().toString(), "--input",
        file.toString(), "--output", out, "--format", "jsonl", "--max-new-tokens", "" + MAX_NEW,
        "--temperature", "0.9", "--top-k", "20", "--seed", "7", "--partitions", "3"));

    Map<String, Completion> expected = engineCompletions(input, new SamplingParams(0.9, 20, 1.0, 0), 7);
    List<Row> written = spark.read().schema(Tables.COMPLETIONS).json(out).collectAsList();
    assertThat(written).hasSize(input.size());
    for (Row r : written) {
      Completion c = expected.get(r.<String>getAs("id"));
      assertThat(r.<String>getAs("completion")).as("sampled completion of %s", c.id()).isEqualTo(c.text());
    }
  }

  @Test
  void resumeComputesOnlyTheMissingIds() {
    SparkSession spark = TestSupport.spark();
    Map<String, String> all = TestSupport.referenceInput();
    Map<String, String> firstHalf = new LinkedHashMap<>();
    all.entrySet().stream().limit(3).forEach(e -> firstHalf.put(e.getKey(), e.getValue()));
    String out = tmp.resolve("resumed").toString();
    String model = TestSupport.tinyModel().toString();
    JobResult partial = BatchInference.run(spark, TestSupport.options("--model", model, "--input",
        TestSupport.writeJsonl(tmp.resolve("part.jsonl"), firstHalf).toString(), "--output", out,
        "--max-new-tokens", "" + MAX_NEW));
    assertThat(partial.requests()).isEqualTo(3);

    String full = TestSupport.writeJsonl(tmp.resolve("all.jsonl"), all).toString();
    assertThatThrownBy(() -> BatchInference.run(spark, TestSupport.options("--model", model, "--input", full,
        "--output", out))).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("--resume");

    JobResult resumed = BatchInference.run(spark, TestSupport.options("--model", model, "--input", full,
        "--output", out, "--max-new-tokens", "" + MAX_NEW, "--resume"));
    assertThat(resumed.skippedRows()).isEqualTo(3);
    assertThat(resumed.rows()).isEqualTo(all.size() - 3);
    assertThat(resumed.requests()).as("only the missing ids are computed").isEqualTo(all.size() - 3);

    List<Row> written = spark.read().parquet(out).collectAsList();
    assertThat(written).extracting(r -> r.<String>getAs("id")).as("no duplicates, nothing missing")
        .containsExactlyInAnyOrderElementsOf(all.keySet());
    for (Row r : written) {
      assertThat(r.<String>getAs("completion")).isEqualTo(greedyReference.get(r.<String>getAs("id")).text());
    }
    assertThat(spark.read().parquet(out + "/_job_runs").count()).isEqualTo(2);

    JobResult nothingLeft = BatchInference.run(spark, TestSupport.options("--model", model, "--input", full,
        "--output", out, "--resume"));
    assertThat(nothingLeft.rows()).isZero();
    assertThat(nothingLeft.requests()).isZero();
    assertThat(spark.read().parquet(out).count()).isEqualTo(all.size());
    Row idle = spark.read().parquet(out + "/_job_runs").where("run_id = '" + nothingLeft.runId() + "'").first();
    assertThat(idle.<Integer>getAs("model_loads")).isZero();
    assertThat(idle.<String>getAs("device")).as("no engine loaded: the requested device").isEqualTo("auto");
    assertThat(idle.<String>getAs("backend")).as("no engine loaded: the requested backend").isEqualTo("auto");
  }

  @Test
  void aRunStoppedAfterItsFirstCommitResumesWithOnlyTheMissingIds() {
    SparkSession spark = TestSupport.spark();
    Map<String, String> all = TestSupport.referenceInput();
    String input = TestSupport.writeJsonl(tmp.resolve("all.jsonl"), all).toString();
    String out = tmp.resolve("stopped").toString();
    String model = TestSupport.tinyModel().toString();
    // Cancels the run's second commit as it starts: the run dies after committing its first wave.
    org.apache.spark.scheduler.SparkListener canceller = new org.apache.spark.scheduler.SparkListener() {
      @Override
      public void onJobStart(org.apache.spark.scheduler.SparkListenerJobStart start) {
        String description = start.properties() == null ? null : start.properties().getProperty("spark.job.description");
        if (description != null && description.contains("(commit 2/")) {
          spark.sparkContext().cancelJob(start.jobId());
        }
      }
    };
    spark.sparkContext().addSparkListener(canceller);
    try {
      assertThatThrownBy(() -> BatchInference.run(spark, TestSupport.options("--model", model, "--input", input,
          "--output", out, "--max-new-tokens", "" + MAX_NEW, "--commit-every", "3")))
          .hasMessageContaining("cancelled");
    } finally {
      spark.sparkContext().removeSparkListener(canceller);
    }
    long committed = spark.read().parquet(out).count();
    assertThat(committed).as("the first commit's rows are kept").isLessThan(all.size());
    Row failed = spark.read().parquet(out + "/_job_runs").first();
    assertThat(failed.<String>getAs("status")).isEqualTo("failed");
    assertThat(failed.<Integer>getAs("commits")).isEqualTo(1);

    JobResult resumed = BatchInference.run(spark, TestSupport.options("--model", model, "--input", input,
        "--output", out, "--max-new-tokens", "" + MAX_NEW, "--resume", "--commit-every", "3"));
    assertThat(resumed.skippedRows()).isEqualTo(committed);
    assertThat(resumed.requests()).as("only the missing ids are computed").isEqualTo(all.size() - committed);
    List<Row> written = spark.read().parquet(out).collectAsList();
    assertThat(written).extracting(r -> r.<String>getAs("id")).as("each id once after the resume")
        .containsExactlyInAnyOrderElementsOf(all.keySet());
    for (Row r : written) {
      assertThat(r.<String>getAs("completion")).isEqualTo(greedyReference.get(r.<String>getAs("id")).text());
    }
  }

  /**
   * A run that dies while writing its first commit past 60% of the rows (a task of that commit fails: the fault
   * is injected into the commit's rows, so it strikes at the same point in every run) keeps its earlier commits;
   * {@code --resume} computes only the missing ids, and the table it leaves equals an uninterrupted run's.
   */
  @Test
  void aRunKilledPastSixtyPercentResumesToTheOutputOfAnUninterruptedRun() throws java.io.IOException {
    SparkSession spark = TestSupport.spark();
    Map<String, String> prompts = new LinkedHashMap<>(TestSupport.referenceInput());
    for (int i = 0; prompts.size() < 30; i++) {
      prompts.put("f" + i, "def f" + i + "(x):\n    return x * " + i);
    }
    prompts.put("empty", "");
    Path input = TestSupport.writeJsonl(tmp.resolve("in/prompts.jsonl"), prompts);
    java.nio.file.Files.writeString(input, "{\"id\": \"bad-json\", \"prompt\": \n",
        java.nio.file.StandardOpenOption.APPEND);
    long inputRows = prompts.size() + 1;
    String model = TestSupport.tinyModel().toString();
    String[] run = {"--model", model, "--input", input.toString(), "--max-new-tokens", "" + MAX_NEW,
        "--commit-every", "5"};

    String out = tmp.resolve("killed").toString();
    long[] committedAtCrash = {-1};
    BatchInference.CommitHook crashPastSixtyPercent = (commit, commits, answers) -> {
      long committed = commit == 1 ? 0 : spark.read().parquet(out).count();
      if (committedAtCrash[0] >= 0 || committed < 0.6 * inputRows) {
        return answers;
      }
      committedAtCrash[0] = committed;
      return answers.map((org.apache.spark.api.java.function.MapFunction<Row, Row>) r -> {
        throw new IllegalStateException("injected crash while writing commit " + commit);
      }, org.apache.spark.sql.Encoders.row(Tables.COMPLETIONS));
    };
    assertThatThrownBy(() -> BatchInference.run(spark, TestSupport.options(TestSupport.with(run, "--output", out)),
        crashPastSixtyPercent)).hasMessageContaining("injected crash while writing commit");
    long committed = spark.read().parquet(out).count();
    assertThat(committed).as("the commits before the crash are kept, and only they").isEqualTo(committedAtCrash[0]);
    assertThat((double) committed / inputRows).as("the run died past 60%% and before the end").isBetween(0.6, 0.99);
    Row failed = spark.read().parquet(out + "/_job_runs").first();
    assertThat(failed.<String>getAs("status")).isEqualTo("failed");

    JobResult resumed = BatchInference.run(spark, TestSupport.options(TestSupport.with(run, "--output", out, "--resume")));
    assertThat(resumed.skippedRows()).isEqualTo(committed);
    assertThat(resumed.requests()).as("only the missing ids are computed (the error rows were in the first commit)")
        .isEqualTo(inputRows - committed);

    String whole = tmp.resolve("uninterrupted").toString();
    BatchInference.run(spark, TestSupport.options(TestSupport.with(run, "--output", whole)));
    Map<String, List<Object>> expected = TestSupport.answers(spark, whole);
    assertThat(expected).hasSize((int) inputRows);
    assertThat(TestSupport.answers(spark, out)).as("the resumed table equals the uninterrupted run's, id for id")
        .containsExactlyInAnyOrderEntriesOf(expected);
  }

  private static String join(long[] ids) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < ids.length; i++) {
      sb.append(i == 0 ? "" : ",").append(ids[i]);
    }
    return sb.toString();
  }
}
