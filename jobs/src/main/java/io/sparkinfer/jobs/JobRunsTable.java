package io.sparkinfer.jobs;

import java.io.IOException;
import java.io.InputStream;
import java.time.Instant;
import java.util.List;
import java.util.Properties;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;

/**
 * The {@code job_runs} table ({@link Tables#JOB_RUNS}): one row per run, appended when it ends, succeeded or
 * failed, with what it was asked (every option), what the engines resolved, and what it did
 * ({@link JobMetrics}, {@link RunPlan.Counts}).
 */
final class JobRunsTable {

  private JobRunsTable() {}

  /** The run's record from the driver's counts and the executors' accumulators. */
  static JobResult result(SparkSession spark, JobOptions o, String runId, Instant started, String status,
      String error, RunPlan.Counts counts, JobMetrics m, int partitions, int commits) {
    long errorRows = counts.plannedErrors + m.errorRows.value();
    long answeredByEngine = m.okRows.value() + m.errorRows.value();
    return new JobResult(runId, status, error, started, Instant.now(), o,
        m.loadedPrecisions() != null ? m.loadedPrecisions() : o.text(io.sparkinfer.engine.EngineOptions.PRECISION),
        m.loadedDevices() != null ? m.loadedDevices() : o.device(),
        m.loadedBackends() != null ? m.loadedBackends() : o.text(io.sparkinfer.engine.EngineOptions.BACKEND),
        m.loadedLayouts() != null ? m.loadedLayouts() : o.text(io.sparkinfer.engine.EngineOptions.LAYOUT),
        spark.sparkContext().master(), spark.version(),
        counts.inputRows, counts.inputRows - counts.rows, counts.rows, counts.plannedErrors, counts.inputErrors,
        m.requests.value(),
        Math.max(0, answeredByEngine - m.requests.value()), m.okRows.value() + counts.cacheHits, errorRows, m.promptTokens.value(),
        m.completionTokens.value(), m.generateNanos.value() / 1e9, partitions, commits, m.executorCount(),
        m.loadsByExecutor(), m.loadSeconds(), m.oomRetries.value(), m.loadedLibtorch(),
        RunTimeline.of(started, m.taskTimelines(), m.generatorRuns()), counts.cacheHits, counts.cacheMisses, counts.cacheTokensSaved);
  }

  /** Appends the run's row to {@code --runs-table}. */
  static void append(SparkSession spark, JobResult result) {
    spark.sparkContext().setJobDescription("sparkinfer " + result.runId() + ": append to job_runs");
    spark.createDataFrame(List.of(result.toRow()), Tables.JOB_RUNS).coalesce(1).write().mode(SaveMode.Append)
        .parquet(result.options().runsTablePath());
  }
}
