package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.model.Precision;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The executor's engine cache: one load per key, and a preload that the first user waits for and reports. */
class ExecutorEnginesTest {

  @TempDir
  Path tmp;

  @BeforeEach
  @AfterEach
  void forgetEngines() {
    ExecutorEngines.closeAll();
  }

  private static ExecutorEngines.Key tinyKey() {
    return new ExecutorEngines.Key("file:" + TestSupport.tinyModel(),
        EngineOptions.of(TestSupport.tinyModel(), Precision.FP32, "cpu"));
  }

  @Test
  void aPreloadedEngineIsLoadedOnceAndReportedOnceByItsFirstUser() {
    int loadsBefore = ExecutorEngines.loadCount();
    ExecutorEngines.preload(tinyKey());
    ExecutorEngines.preload(tinyKey()); // loading already: nothing more
    List<Double> reported = new ArrayList<>();
    LlmEngine first = ExecutorEngines.engine(tinyKey(), (k, e, seconds) -> reported.add(seconds));
    LlmEngine second = ExecutorEngines.engine(tinyKey(), (k, e, seconds) -> reported.add(seconds));
    assertThat(second).as("one engine per key").isSameAs(first);
    assertThat(ExecutorEngines.loadCount()).as("one load, by the preload or by the first user").isEqualTo(
        loadsBefore + 1);
    assertThat(reported).as("the load reported once, to the first user, with its seconds").hasSize(1);
    assertThat(reported.get(0)).isPositive();
    ExecutorEngines.preload(tinyKey()); // loaded: nothing to do
    assertThat(ExecutorEngines.loadCount()).isEqualTo(loadsBefore + 1);
  }

  /**
   * Asking for a preload never waits for a load in progress: each planning task asks, and they used to wait out the
   * whole load on the engine's lock (4 of the planning stage's 4.1 s on an H200).
   */
  @Test
  void askingForAPreloadDoesNotWaitForTheLoadInProgress() throws Exception {
    CountDownLatch loading = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    ExecutorService user = Executors.newSingleThreadExecutor();
    try {
      // a user's load: the listener runs while the load still holds the engine's lock
      Future<LlmEngine> first = user.submit(() -> ExecutorEngines.engine(tinyKey(), (k, e, seconds) -> {
        loading.countDown();
        try {
          release.await(60, TimeUnit.SECONDS);
        } catch (InterruptedException ex) {
          Thread.currentThread().interrupt();
        }
      }));
      assertThat(loading.await(120, TimeUnit.SECONDS)).as("the load reached its listener").isTrue();
      CompletableFuture<Void> asked = CompletableFuture.runAsync(() -> ExecutorEngines.preload(tinyKey()));
      assertThat(asked.get(10, TimeUnit.SECONDS)).as("preload returned while the lock is held").isNull();
      release.countDown();
      assertThat(first.get(60, TimeUnit.SECONDS)).isNotNull();
    } finally {
      release.countDown();
      user.shutdownNow();
    }
  }

  @Test
  void theDriversPreloadRunsOnAPreloadThreadStartsTheLoadAndLoadsPlanningsTokenizer() throws Exception {
    ExecutorEngines.closeAll();
    String[] thread = new String[1];
    ExecutorEngines.inBackground(() -> thread[0] = Thread.currentThread().getName()
        + (Thread.currentThread().isDaemon() ? ", daemon" : "")).get(10, TimeUnit.SECONDS);
    assertThat(thread[0]).as("not the driver's thread, and no JVM waits for it").isEqualTo("sparkinfer-preload, daemon");
    int before = ExecutorEngines.preloadCount();
    JobOptions o = TestSupport.options("--model", TestSupport.tinyModel().toString(), "--input", "in.jsonl",
        "--output", "out", "--device", "cpu");
    ModelLocation model = ModelLocation.check(TestSupport.tinyModel().toString(), new Configuration(), null);
    assertThat(ExecutorEngines.tokenizerLoaded(model.localDir())).isFalse();
    PartitionInference.preloadEnginesInBackground(o, model).get(60, TimeUnit.SECONDS);
    assertThat(ExecutorEngines.preloadCount() - before).as("the layout resolved there and the load started")
        .isEqualTo(1);
    assertThat(ExecutorEngines.tokenizerLoaded(model.localDir())).as("planning's tokenizer, ready for its tasks")
        .isTrue();
    assertThat(ExecutorEngines.engine(new ExecutorEngines.Key(model.uri(), PartitionInference.replicaPlan(o, model,
        null).replicas().get(0)), (k, e, seconds) -> { })).isNotNull();
  }

  @Test
  void aPreloadThatFailsLeavesTheFirstUserToLoadAndFailAsWithoutIt() throws Exception {
    Path broken = Files.createDirectories(tmp.resolve("broken"));
    Files.writeString(broken.resolve("config.json"), "{\"model_type\": \"llama\"}");
    ExecutorEngines.Key key = new ExecutorEngines.Key("file:" + broken, EngineOptions.of(broken, Precision.FP32,
        "cpu"));
    ExecutorEngines.preload(key);
    assertThatThrownBy(() -> ExecutorEngines.engine(key, (k, e, s) -> { }))
        .as("the user's own load fails with the model's error").isInstanceOf(RuntimeException.class);
  }

  @Test
  void inLocalModeTheDriverStartsTheLoadItselfWhereEnginesPreloadAndTheModelIsLocal() {
    String[] base = {"--model", TestSupport.tinyModel().toString(), "--input", "in.jsonl", "--output", "out"};
    JobOptions local = TestSupport.options(base);
    InferenceStageProfile none = InferenceStageProfile.NONE;
    assertThat(BatchInference.preloadsHere(true, local, none)).isTrue();
    assertThat(BatchInference.preloadsHere(false, local, none)).as("on a cluster the executors load").isFalse();
    assertThat(BatchInference.preloadsHere(true, TestSupport.options(
        "--model", "hdfs://nn/models/m", "--input", "in.jsonl", "--output", "out"), none))
        .as("a remote model is fetched by the planning task").isFalse();
    assertThat(BatchInference.preloadsHere(true, TestSupport.options(
        "--model", TestSupport.tinyModel().toString(), "--input", "in.jsonl", "--output", "out",
        "--preload-engines=false"), none)).isFalse();
    assertThat(BatchInference.preloadsHere(true, TestSupport.options(
        "--model", TestSupport.tinyModel().toString(), "--input", "in.jsonl", "--output", "out",
        "--cache", tmp.resolve("cache").toString()), none)).as("a cached run may load no model").isFalse();
  }

  @Test
  void theJobPreloadsWhilePlanningAndReportsOneLoadWhetherOrNot() {
    SparkSession spark = TestSupport.spark();
    Path input = TestSupport.writeJsonl(tmp.resolve("prompts.jsonl"), TestSupport.referenceInput());
    for (String preload : new String[] {"true", "false"}) {
      ExecutorEngines.closeAll();
      int preloadsBefore = ExecutorEngines.preloadCount();
      String out = tmp.resolve("out-" + preload).toString();
      JobResult result = BatchInference.run(spark, TestSupport.options("--model", TestSupport.tinyModel().toString(),
          "--input", input.toString(), "--output", out, "--max-new-tokens", "4", "--partitions", "2",
          "--preload-engines=" + preload));
      assertThat(result.succeeded()).isTrue();
      assertThat(ExecutorEngines.preloadCount() - preloadsBefore).as("preloads started with --preload-engines=%s",
          preload).isEqualTo(preload.equals("true") ? 1 : 0);
      Row run = spark.read().parquet(out + "/_job_runs").first();
      assertThat(run.<Integer>getAs("model_loads")).as("one load reported, preloaded or not").isEqualTo(1);
      double wait = run.getAs("engine_wait_s");
      double load = run.getAs("model_load_s");
      assertThat(wait).as("the tasks waited for the engines at most as long as they took to load (and the "
          + "tasks that found them loaded not at all)").isLessThanOrEqualTo(load + 0.05);
    }
  }
}
