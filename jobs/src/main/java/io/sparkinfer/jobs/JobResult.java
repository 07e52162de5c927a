package io.sparkinfer.jobs;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.generate.GeneratorOptions;
import io.sparkinfer.generate.RequestOptions;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.Locale;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

/**
 * What one run did: the row counts at each step, tokens, times, model loads. It is the job_runs row
 * ({@link Tables#JOB_RUNS}) and the summary table printed at the end.
 *
 * @param precisionLabel the precisions the engines loaded in ({@code fp32}, {@code fp16}); the requested one
 *     when no engine loaded
 * @param deviceLabel the devices the engines resolved ({@code cpu}, {@code gpu:N}); the requested one
 *     ({@code auto} included) when no engine loaded
 * @param backendLabel the backends the engines resolved ({@code eager}, {@code scripted}); the requested one
 *     ({@code auto} included) when no engine loaded
 * @param layoutLabel the layouts the tasks ran ({@code auto} resolved, e.g. {@code replicas=2,tp=1,pp=1,threads=2});
 *     the requested one when no task ran inference
 * @param inputRows rows read from the input
 * @param skippedRows rows whose id the output already had (--resume)
 * @param rows rows this run answered (input less skipped)
 * @param plannedErrorRows rows answered by planning with an error (empty, null or too long prompts, and the input's
 *     unreadable rows)
 * @param inputErrorRows rows the input could not give (a bad JSON line or CSV record, a prompt of the wrong type,
 *     bytes that are not UTF-8, no id), answered by planning as error rows: part of {@code plannedErrorRows}
 * @param requests requests the engine ran (after deduplication)
 * @param deduplicatedRows rows answered by another row's identical greedy request
 * @param okRows rows with a completion
 * @param errorRows rows with an error (planning and generation)
 * @param generateSeconds time inside the engine, summed over tasks
 * @param partitions inference partitions per commit
 * @param commits output commits made (one per wave of --commit-every rows)
 * @param oomRetries batches that ran out of device memory and were retried at half their width
 * @param libtorchLabel the directories the executors loaded libtorch from, comma-separated; null when no engine
 *     loaded
 * @param timeline where the time went: first inference task, inference span, idle generators, batch sizes
 * @param cacheHits rows answered from the result cache ({@code --cache})
 * @param cacheMisses rows looked up in the result cache and not found there (computed)
 * @param cacheTokensSaved completion tokens of the cached answers used, once per request: tokens the engine did not
 *     generate
 */
public record JobResult(
    String runId,
    String status,
    String error,
    Instant startedAt,
    Instant finishedAt,
    JobOptions options,
    String precisionLabel,
    String deviceLabel,
    String backendLabel,
    String layoutLabel,
    String master,
    String sparkVersion,
    long inputRows,
    long skippedRows,
    long rows,
    long plannedErrorRows,
    long inputErrorRows,
    long requests,
    long deduplicatedRows,
    long okRows,
    long errorRows,
    long promptTokens,
    long completionTokens,
    double generateSeconds,
    int partitions,
    int commits,
    int executors,
    Map<String, Integer> loadsByExecutor,
    double modelLoadSeconds,
    long oomRetries,
    String libtorchLabel,
    RunTimeline timeline,
    long cacheHits,
    long cacheMisses,
    long cacheTokensSaved) {

  public static final String SUCCEEDED = "succeeded";
  public static final String FAILED = "failed";

  public double wallSeconds() {
    return (finishedAt.toEpochMilli() - startedAt.toEpochMilli()) / 1000.0;
  }

  /** Completion tokens per second of wall time. */
  public double tokensPerSecond() {
    return completionTokens / Math.max(wallSeconds(), 1e-3);
  }

  public double rowsPerSecond() {
    return rows / Math.max(wallSeconds(), 1e-3);
  }

  public int modelLoads() {
    return loadsByExecutor.values().stream().mapToInt(Integer::intValue).sum();
  }

  public boolean succeeded() {
    return SUCCEEDED.equals(status);
  }

  /** The job_runs row. */
  public Row toRow() {
    JobOptions o = options;
    return RowFactory.create(runId, status, error, Timestamp.from(startedAt), Timestamp.from(finishedAt),
        wallSeconds(), o.model(), precisionLabel, deviceLabel, backendLabel, layoutLabel, o.input(),
        o.output(), o.format().label(), o.resume(), inputRows, skippedRows, rows, plannedErrorRows, inputErrorRows, requests,
        deduplicatedRows, okRows, errorRows, promptTokens, completionTokens, generateSeconds, tokensPerSecond(),
        rowsPerSecond(), o.maxNewTokens(), o.get(RequestOptions.TEMPERATURE), o.get(RequestOptions.TOP_K),
        o.get(RequestOptions.TOP_P), o.get(RequestOptions.SEED), o.text(GeneratorOptions.BATCH_SIZE),
        o.maxPromptTokens(), o.values().texts(EngineOptions.ALL), partitions, commits, executors,
        modelLoads(), loadsByExecutor, modelLoadSeconds, master, sparkVersion, ProjectVersion.get(), oomRetries,
        libtorchLabel, timeline.firstInferenceSeconds(), timeline.inferenceSpanSeconds(),
        timeline.inferenceTaskSeconds(), timeline.engineWaitSeconds(), timeline.engineIdleSeconds(),
        timeline.batchSizes(), o.cache(), cacheHits, cacheMisses, cacheTokensSaved);
  }

  /** The summary table printed when the job ends. */
  public String summary() {
    StringBuilder sb = new StringBuilder();
    sb.append("sparkinfer batch inference: run ").append(runId).append(" ").append(status).append('\n');
    line(sb, "rows", String.format(Locale.ROOT, "%,d input | %,d skipped (already in output) | %,d answered",
        inputRows, skippedRows, rows));
    line(sb, "outcome", String.format(Locale.ROOT, "%,d ok | %,d error (%,d at planning, %,d unreadable input rows)",
        okRows, errorRows, plannedErrorRows, inputErrorRows));
    line(sb, "engine", String.format(Locale.ROOT, "%,d requests | %,d rows deduplicated | %d partitions x %d commit(s)%s",
        requests, deduplicatedRows, partitions, commits, oomRetries == 0 ? ""
            : String.format(Locale.ROOT, " | %,d batch(es) out of memory, retried at half width", oomRetries)));
    if (options.cache() != null) {
      line(sb, "cache", String.format(Locale.ROOT, "%,d rows answered from it | %,d not found there | %,d completion "
          + "tokens saved | %s", cacheHits, cacheMisses, cacheTokensSaved, options.cache()));
    }
    line(sb, "tokens", String.format(Locale.ROOT, "%,d prompt | %,d completion", promptTokens, completionTokens));
    line(sb, "throughput", String.format(Locale.ROOT, "%.1f completion tokens/s | %.2f rows/s",
        tokensPerSecond(), rowsPerSecond()));
    line(sb, "wall time", String.format(Locale.ROOT, "%.1f s (generation %.1f s summed over tasks)", wallSeconds(),
        generateSeconds));
    line(sb, "timeline", timeline.describe(generateSeconds));
    line(sb, "model", String.format(Locale.ROOT, "%s, %s, %s backend, %d load(s) on %d executor(s) %s, %.1f s",
        options.model(), precisionLabel, backendLabel, modelLoads(), executors, loadsByExecutor, modelLoadSeconds));
    line(sb, "completions", options.output() + " (" + options.format().label() + ")");
    line(sb, "job_runs", options.runsTablePath() + " (parquet)");
    if (error != null) {
      line(sb, "error", error);
    }
    return sb.toString();
  }

  private static void line(StringBuilder sb, String name, String value) {
    sb.append(String.format(Locale.ROOT, "  %-12s %s%n", name, value));
  }
}
