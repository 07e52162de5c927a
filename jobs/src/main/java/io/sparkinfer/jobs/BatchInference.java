package io.sparkinfer.jobs;

import io.sparkinfer.engine.EngineOptions;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One batch inference run on a Spark session: every row of the input table answered once under its id in
 * the {@code completions} table ({@link Tables#COMPLETIONS}), then a {@code job_runs} row.
 *
 * <ol>
 *   <li>Read the input ({@link InputTable}) and look at the output ({@link OutputTable}).
 *   <li>Plan ({@link RunPlan}): resume, token counts and error rows on the executors, dedup, the answers found in
 *       the result cache ({@link ResultCache}, {@code --cache}), waves, partitions.
 *   <li>Infer ({@link PartitionInference}, on the executors, with each executor's cached engine) and write each
 *       wave through Spark's commit protocol; add what it computed to the result cache.
 *   <li>Record the run ({@link JobRunsTable}), also when it fails.
 * </ol>
 */
public final class BatchInference {

  private static final Logger LOG = LoggerFactory.getLogger(BatchInference.class);

  /** Runs going on in this JVM: the last one to end in local mode closes the engines they share. */
  private static final AtomicInteger RUNNING = new AtomicInteger();

  private BatchInference() {}

  /**
   * What a run does with each commit's rows just before writing them: nothing, except in tests that inject a
   * fault into a commit (a task that fails while writing it).
   */
  @FunctionalInterface
  interface CommitHook {
    CommitHook NONE = (commit, commits, answers) -> answers;

    /** The rows commit {@code commit} (from 1) of {@code commits} writes. */
    Dataset<Row> beforeWrite(int commit, int commits, Dataset<Row> answers);
  }

  /**
   * Runs the job on {@code spark}. Problems with the options, the model or the input throw
   * {@link IllegalArgumentException} before any work; a failure while running appends a {@code failed}
   * job_runs row and rethrows.
   */
  public static JobResult run(SparkSession spark, JobOptions o) {
    return run(spark, o, null, CommitHook.NONE);
  }

  /**
   * {@link #run(SparkSession, JobOptions)} with the model already checked ({@link ModelLocation#check}): {@link
   * BatchInferenceJob} checks a local one before Spark starts, and the run takes that check rather than reading the
   * model's config, weights' headers and tokenizer again: on an H200's host the run spent 0.28 s checking the model
   * and inspecting the output, with the benchmark's 1.5B checkpoint and its 151,936-word tokenizer
   * (bench/results/2026-12-03-e2e-NVIDIA-H200-run30's prof-1).
   */
  static JobResult run(SparkSession spark, JobOptions o, ModelLocation checked) {
    return run(spark, o, checked, CommitHook.NONE);
  }

  /**
   * Whether the driver starts loading the engines itself, at the run's start: in local mode, where this JVM is the
   * executor, when engines preload at all ({@link Completions#preloads}) and the model is a local directory (a remote
   * one is fetched by the first planning task, not on the driver's thread). They then load while Spark reads and
   * plans the prompts rather than from the first planning task's start: on an H200 the model had finished loading 5 s
   * after the plan, the last thing the first generator waited for (bench/results/2026-12-02-e2e-NVIDIA-H200-run6).
   */
  static boolean preloadsHere(boolean localMode, JobOptions o, InferenceStageProfile stage) {
    return localMode && Completions.preloads(o, stage) && ModelLocation.isLocal(o.model());
  }

  /** {@link #run(SparkSession, JobOptions)} with a hook on each commit's rows (fault injection in tests). */
  static JobResult run(SparkSession spark, JobOptions o, CommitHook hook) {
    return run(spark, o, null, hook);
  }

  private static JobResult run(SparkSession spark, JobOptions o, ModelLocation checked, CommitHook hook) {
    Instant started = Instant.now();
    SqlWarmUp.start(spark); // Catalyst loads on a thread once the run's first Spark job starts
    String runId = o.runId() != null ? o.runId() : newRunId(started);
    SparkContext sc = spark.sparkContext();
    Configuration hadoopConf = sc.hadoopConfiguration();
    ModelLocation model = checked != null ? checked : ModelLocation.check(o.model(), hadoopConf, o.modelCache());
    OutputTable output = OutputTable.inspect(o, hadoopConf);
    output.checkWritable();
    Dataset<Row> input = InputTable.read(spark, o, hadoopConf);

    JobMetrics metrics = JobMetrics.register(sc);
    InjectedFault fault = InjectedFault.from(sc.getConf()); // a test hook: null unless a test set its keys
    InferenceStageProfile stage = InferenceStageProfile.forRun(spark, o.inferenceGpus(), o.get(EngineOptions.LAYOUT));
    ResultCache cache = ResultCache.open(spark, o, model, ResultCache.tasksUseGpus(o, stage, sc.getConf()));
    if (preloadsHere(sc.isLocal(), o, stage)) {
      PartitionInference.preloadEnginesInBackground(o, model);
    }
    RunPlan.Counts counts = new RunPlan.Counts();
    int partitions = 0;
    int commits = 0;
    RUNNING.incrementAndGet();
    try (RunPlan plan = RunPlan.make(spark, o, model, input, output, runId, stage, counts, cache)) {
      partitions = plan.partitions();
      try (ProgressReporter progress = ProgressReporter.start(spark, metrics, counts.rows,
          counts.plannedErrors + counts.cacheHits, o.progressSeconds())) {
        for (int wave = 0; wave < plan.waves(); wave++) {
          boolean firstWave = wave == 0;
          // Each wave is its own Spark job and commit: a run that dies keeps the waves it committed.
          Dataset<Row> answers = firstWave ? plan.errorRows() : null;
          if (firstWave && plan.cachedRows() != null) {
            answers = answers == null ? plan.cachedRows() : answers.unionByName(plan.cachedRows());
          }
          Dataset<Row> requests = plan.wave(wave);
          if (requests != null) {
            Dataset<Row> inferred = Completions.infer(stage.apply(spark, requests), o, model, runId, metrics, fault,
                counts.longestPromptTokens);
            answers = answers == null ? inferred : inferred.unionByName(answers);
          }
          if (answers == null || (counts.rows == 0 && output.hasData())) {
            continue; // nothing to add (a resume with every id already answered)
          }
          sc.setJobDescription("sparkinfer " + runId + ": generate and write " + o.output() + " (commit " + (wave + 1)
              + "/" + plan.waves() + ")");
          // adaptive execution off: with it, the range shuffle's map stage ran as a Spark job of its own, and the
          // wave was planned again after it, before the first inference task
          Dataset<Row> rows = hook.beforeWrite(wave + 1, plan.waves(), answers);
          AdaptiveExecution.off(spark, () -> output.write(rows, firstWave));
          commits++;
          if (cache != null && requests != null) {
            sc.setJobDescription("sparkinfer " + runId + ": add commit " + (wave + 1) + "'s answers to the cache "
                + o.cache());
            cache.append(spark, output.readAnswers(spark), plan.computedIds(wave), model.uri(), runId, metrics);
          }
        }
        progress.report(); // the final line: 100%
      }
      JobResult result = JobRunsTable.result(spark, o, runId, started, JobResult.SUCCEEDED, null, counts, metrics,
          partitions, commits);
      JobRunsTable.append(spark, result);
      return result;
    } catch (Exception e) { // Spark's exceptions are checked ones in Java's eyes (SparkException)
      try {
        JobRunsTable.append(spark, JobRunsTable.result(spark, o, runId, started, JobResult.FAILED,
            FailureMessage.of(e), counts, metrics, partitions, commits));
      } catch (RuntimeException again) {
        LOG.warn("could not append the failed run to {}", o.runsTablePath(), again);
        e.addSuppressed(again);
      }
      if (e instanceof RuntimeException re) {
        throw re;
      }
      throw new JobFailedException("run " + runId + " failed: " + FailureMessage.of(e), e);
    } finally {
      sc.setJobDescription(null);
      if (RUNNING.decrementAndGet() == 0 && sc.isLocal()) {
        SharedGenerators.stopAll(); // a failed run's aborted tasks may still keep them decoding on the engines
        ExecutorEngines.closeAll(); // the driver is the executor: free the model with the job (the last one running)
      }
    }
  }

  static String newRunId(Instant now) {
    return DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss", Locale.ROOT).withZone(ZoneOffset.UTC).format(now) + "-"
        + UUID.randomUUID().toString().substring(0, 8);
  }
}
