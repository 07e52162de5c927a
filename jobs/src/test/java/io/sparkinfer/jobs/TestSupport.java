package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * Shared pieces of the job tests: the fixture checkpoints, their prompts, one local[2] Spark session for the
 * whole test JVM (stopped only by tests that need another master), and option builders.
 */
public final class TestSupport {

  private static SparkSession spark;

  private TestSupport() {}

  /** The repository root (where submit/ and conf/ are). */
  public static Path repo() {
    String prop = System.getProperty("sparkinfer.repo");
    for (Path p = prop != null ? Path.of(prop).toAbsolutePath() : Path.of("").toAbsolutePath(); p != null;
        p = p.getParent()) {
      if (Files.isDirectory(p.resolve("jobs")) && Files.isDirectory(p.resolve("common"))) {
        return p;
      }
    }
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      if (Files.isDirectory(p.resolve("jobs")) && Files.isDirectory(p.resolve("common"))) {
        return p;
      }
    }
    throw new IllegalStateException("repository root not found from " + Path.of("").toAbsolutePath());
  }

  /** {@code ../shared/fixtures} beside the repository (or -Dsparkinfer.fixtures). */
  public static Path fixtures() {
    String prop = System.getProperty("sparkinfer.fixtures");
    if (prop != null && Files.isDirectory(Path.of(prop, "qwen2-tiny"))) {
      return Path.of(prop).toAbsolutePath().normalize();
    }
    Path p = repo().resolve("../shared/fixtures").normalize();
    if (!Files.isDirectory(p.resolve("qwen2-tiny"))) {
      throw new IllegalStateException("shared fixtures not found at " + p + "; CI provides ../shared beside the repo");
    }
    return p;
  }

  /** The 2-layer random Qwen2 checkpoint: fast, and its outputs are exact references. */
  public static Path tinyModel() {
    return fixtures().resolve("qwen2-tiny");
  }

  /** The prompts of a fixture's reference.json. */
  static List<String> referencePrompts(Path model) {
    try {
      JsonObject root = JsonParser.parseString(Files.readString(model.resolve("reference.json"))).getAsJsonObject();
      List<String> prompts = new ArrayList<>();
      for (JsonElement e : root.getAsJsonArray("cases")) {
        prompts.add(e.getAsJsonObject().get("prompt").getAsString());
      }
      return prompts;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Writes rows of (id, prompt) as JSONL; a null id leaves the field out, a null prompt writes null. */
  public static Path writeJsonl(Path file, Map<String, String> idToPrompt) {
    StringBuilder sb = new StringBuilder();
    for (Map.Entry<String, String> e : idToPrompt.entrySet()) {
      JsonObject o = new JsonObject();
      o.addProperty("id", e.getKey());
      o.addProperty("prompt", e.getValue());
      sb.append(new com.google.gson.GsonBuilder().serializeNulls().create().toJson(o)).append('\n');
    }
    try {
      Files.createDirectories(file.getParent());
      Files.writeString(file, sb.toString(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return file;
  }

  /** The reference prompts as ids p0..p7. */
  static Map<String, String> referenceInput() {
    Map<String, String> rows = new LinkedHashMap<>();
    List<String> prompts = referencePrompts(tinyModel());
    for (int i = 0; i < prompts.size(); i++) {
      rows.put("p" + i, prompts.get(i));
    }
    return rows;
  }

  /** The shared local[2] session (created on first use, and again after a test stopped it). */
  public static synchronized SparkSession spark() {
    if (spark == null || spark.sparkContext().isStopped()) {
      spark = SparkSession.builder()
          .master("local[2]")
          .appName("sparkinfer-jobs-tests")
          .config("spark.ui.enabled", "false")
          .config("spark.sql.shuffle.partitions", "4")
          .config("spark.default.parallelism", "2")
          .config("spark.executor.heartbeatInterval", "1s")
          .config("spark.driver.bindAddress", "127.0.0.1")
          .config("spark.driver.host", "127.0.0.1")
          .getOrCreate();
    }
    return spark;
  }

  /** Work that may throw, for {@link #sparkJobsDuring}. */
  @FunctionalInterface
  interface Work {
    void run() throws Exception;
  }

  /** The Spark jobs that started while {@code work} ran, counted once the listener bus has delivered its events. */
  static int sparkJobsDuring(SparkSession spark, Work work) throws Exception {
    AtomicInteger jobs = new AtomicInteger();
    SparkListener counter = new SparkListener() {
      @Override
      public void onJobStart(SparkListenerJobStart start) {
        jobs.incrementAndGet();
      }
    };
    spark.sparkContext().listenerBus().waitUntilEmpty(); // earlier jobs' events are not this work's
    spark.sparkContext().addSparkListener(counter);
    try {
      work.run();
      spark.sparkContext().listenerBus().waitUntilEmpty();
    } finally {
      spark.sparkContext().removeSparkListener(counter);
    }
    return jobs.get();
  }

  /**
   * Runs the job with {@code listener} attached (the tiny checkpoint over the JSONL {@code input} into {@code output}, 2
   * new tokens, 2 inference partitions), and detaches it once the listener bus has delivered the run's events.
   */
  static JobResult runListened(SparkSession spark, SparkListener listener, String input, String output)
      throws Exception {
    spark.sparkContext().listenerBus().waitUntilEmpty(); // earlier runs' events are not this run's
    spark.sparkContext().addSparkListener(listener);
    try {
      JobResult result = BatchInference.run(spark, options("--model", tinyModel().toString(), "--input", input,
          "--output", output, "--max-new-tokens", "2", "--partitions", "2"));
      spark.sparkContext().listenerBus().waitUntilEmpty();
      return result;
    } finally {
      spark.sparkContext().removeSparkListener(listener);
    }
  }

  /** Stops the shared session (before a test that needs another master). */
  static synchronized void stopSpark() {
    if (spark != null) {
      spark.stop();
      spark = null;
    }
    SparkSession.clearActiveSession();
    SparkSession.clearDefaultSession();
  }

  /** Job options from a command line, with no Spark conf or environment defaults. */
  static JobOptions options(String... args) {
    return JobOptions.parse(args, key -> null, key -> null);
  }

  /**
   * Each row's answer by id in a completions table: what a rerun, a resumed run or a cached run must reproduce (the
   * prompt, completion, token ids and counts, finish reason, error and model; not the run, executor or timings).
   */
  static Map<String, List<Object>> answers(SparkSession spark, String table) {
    Map<String, List<Object>> byId = new HashMap<>();
    for (Row r : spark.read().parquet(table).collectAsList()) {
      List<Object> answer = new ArrayList<>();
      for (String column : List.of("prompt", "completion", "prompt_tokens", "completion_tokens", "finish_reason",
          "error_code", "error_message", "model")) {
        answer.add(r.getAs(column));
      }
      answer.add(r.getList(r.fieldIndex("output_token_ids")));
      assertThat(byId.put(r.getAs("id"), answer)).as("id %s once in %s", r.<String>getAs("id"), table).isNull();
    }
    return byId;
  }

  /** {@code args} and then {@code more}. */
  static String[] with(String[] args, String... more) {
    List<String> all = new ArrayList<>(List.of(args));
    all.addAll(List.of(more));
    return all.toArray(String[]::new);
  }
}
