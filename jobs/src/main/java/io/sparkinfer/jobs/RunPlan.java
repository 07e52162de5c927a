package io.sparkinfer.jobs;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.explode;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.not;
import static org.apache.spark.sql.functions.pmod;
import static org.apache.spark.sql.functions.size;
import static org.apache.spark.sql.functions.sum;
import static org.apache.spark.sql.functions.when;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a run will answer, decided before any inference: the rows still to answer ({@code --resume} skips ids
 * already in the output), their token counts and the rows that cannot run ({@link PromptPlanner}, on the
 * executors), identical greedy prompts under one request ({@code --dedup}, merged as each wave is arranged:
 * {@link RepeatedPrompts}), the commits ("waves" of
 * {@code --commit-every} rows) and the inference partitions of each, range-partitioned by prompt length so
 * a partition's batches pad little. With {@code --cache}, the requests found in the result cache
 * ({@link ResultCache}) are answered from it and only the others are computed. Close it to release what it cached.
 *
 * <h2>Spark jobs before the first inference task</h2>
 * Planning counts in one pass ({@link PlanSummary}: rows, errors, unreadable rows, repeated ids, the prompts'
 * lengths); the repeated-id message's own queries run only when an id is repeated. For a run without a cache: the
 * input's line count, the planning job (one stage: tokenize, cache and count), then the wave: one job of the range
 * shuffle's map stage and the inference stage, adaptive query execution off ({@link AdaptiveExecution}), its ranges
 * cut from planning's count of the lengths ({@link LengthRanges}): 3 Spark jobs to the first inference task. In local
 * mode the wave is, where it can be, one stage over the planned partitions, each sorted by length ({@link #inPlaceMode},
 * {@link Completions#arrangeInPlace}): no range shuffle, whose map stage ran 0.45-0.49 s before the inference tasks. With a
 * cache, the requests to compute are those the cache did not answer, and Spark's range partitioner samples them in a
 * job of its own. Before: the summary as a Spark SQL query of three stages and the range partitioner's sampling job
 * (until 2026-12-03's afternoon: the first inference task came 0.6-0.7 s later on an H200's host,
 * bench/results/2026-12-03-e2e-NVIDIA-H200-run29); the summary's three more jobs (adaptive execution on), and the range
 * shuffle's map stage as a job of its own (until 2026-12-03); the counts (two jobs) and the id check (two jobs) made 10
 * jobs and three queries earlier, and a grouping shuffle for {@code --dedup} before the range's one more (until
 * 2026-12-02's evening: identical prompts meet in one range partition anyway, as they share their length and hash).
 *
 * <p>Measured on the 2-core development machine (2026-12-02; 8,192 prompts of 128-512 words made as
 * {@code bench/gpu/lib.sh}'s {@code bench_prompts} makes them, the demo checkpoint with its context raised to 4,096
 * so every prompt runs, {@code submit/infer.sh --max-new-tokens 1}, times from Spark's event log, three runs
 * before): from JVM start, SparkContext at 4.3-8.6 s, the input's line count at 8.7-16 s, then 2.6-4.5 s of driver
 * time before the planning job, which took 8.6-16 s (one task: the file is one split, tokenized 256 prompts a
 * call on the tokenizer's threads); then 2.2-2.6 s to the plan's log line (counts and id check: four jobs), 0.7-1 s
 * to the wave's first job, 2.8-3.7 s from it to the first inference task (dedup shuffle 0.9 s, sampling 0.7-1 s,
 * range shuffle 0.5-0.7 s), and 2.8-3.4 s more to the first generator's first batch. A first form of the one-query
 * summary (the ids then grouped by length, not added up at once) gave 2.3-2.5 s to the plan's log line in two
 * comparable runs: no gain this machine could show, its runs varying twofold.
 *
 * <p>On an H200's 16 cores (2026-12-02, {@code bench/gpu/e2e.sh} with the event log summed by
 * {@code bench/spark_events.py}, {@code bench/results/2026-12-02-e2e-NVIDIA-H200-run11}): the line count ends 2.6 s
 * after the application's start, the planning job starts 3.9 s later (driver time, mostly class loading), takes 1.5 s
 * in 16 tasks (the input split per core, {@link TextInput#splitBytes}; 4.5 s while each task waited for the engine's
 * preload, run10), then 1.2 s to the plan and 1.9 s of the wave's jobs to the first inference task. Where the driver's
 * 3.9 s go, timed once with temporary timestamps on the 2-core machine (demo run, a 3.6 s gap there): 1.1 s from the
 * line count to the input's DataFrame (the first in the JVM), 0.6 s starting the preload (since on a preload thread,
 * {@link PartitionInference#preloadEnginesInBackground}), 0.9 s making the planned
 * Dataset and 1.0 s planning the summary's query: Spark SQL's first queries in a cold JVM, loading classes. Since
 * {@link SqlWarmUp} plans queries of these shapes on a thread of its own while the driver waits for its first job,
 * the gap between the line count and the planning job is 1.2-1.3 s on an H200's host against 1.9-2.3 s without it,
 * and the first inference task comes 1.3 s earlier (bench/results/2026-12-02-e2e-NVIDIA-H200-run16).
 */
final class RunPlan implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(RunPlan.class);

  /** Rows per inference partition aimed at when deriving the partition count from the input. */
  static final int ROWS_PER_PARTITION = 2048;

  /** Row counts known on the driver; zero until planning counts them (a run that fails early records zeros). */
  static final class Counts {
    long inputRows;
    long rows;
    long plannedErrors;
    /** Planned errors that the input made: rows that could not be read (InputRows.ERROR_CODES). */
    long inputErrors;
    /** Rows answered from the result cache. */
    long cacheHits;
    /** Rows looked up in the result cache and not found (computed). */
    long cacheMisses;
    /** Completion tokens of the cached answers used, once per request: what the engine did not generate. */
    long cacheTokensSaved;
    /** Tokens of the longest prompt that can run (the inference tasks tell the generators). */
    int longestPromptTokens;
  }

  private final Dataset<Row> planned;
  private final Dataset<Row> errors;
  private final Dataset<Row> cached; // completion rows answered by the result cache; null without one
  private final Dataset<Row> looked; // the requests looked up in the cache (persisted); null without one
  private final Dataset<Row> groups; // (prompt, prompt_tokens, ids, tiebreak) to compute, one per row; null when none
  private final boolean groupsCached;
  private final boolean dedup;
  private final int waves;
  private final int partitions;
  private final LengthRanges ranges; // the partitions' ranges from planning's count; null: sampled by Spark
  private final boolean inPlace; // arranged where planning left the rows (Completions.arrangeInPlace), not ranged

  private RunPlan(Dataset<Row> planned, Dataset<Row> errors, Dataset<Row> cached, Dataset<Row> looked,
      Dataset<Row> groups, boolean groupsCached, boolean dedup, int waves, int partitions, LengthRanges ranges,
      boolean inPlace) {
    this.planned = planned;
    this.errors = errors;
    this.cached = cached;
    this.looked = looked;
    this.groups = groups;
    this.groupsCached = groupsCached;
    this.dedup = dedup;
    this.waves = waves;
    this.partitions = partitions;
    this.ranges = ranges;
    this.inPlace = inPlace;
  }

  /**
   * Plans the run over {@code input} ({@link Tables#INPUT}), filling {@code counts}.
   *
   * @param cache the result cache; null for none
   * @throws IllegalArgumentException when an id is repeated
   */
  static RunPlan make(SparkSession spark, JobOptions o, ModelLocation model, Dataset<Row> input, OutputTable output,
      String runId, InferenceStageProfile stage, Counts counts, ResultCache cache) {
    boolean resuming = o.resume() && output.hasData();
    if (resuming) {
      counts.inputRows = input.count();
      Dataset<Row> done = output.read(spark).select(col(Tables.ID)).distinct();
      input = input.join(done, Tables.ID, "left_anti");
    }
    spark.sparkContext().setJobDescription("sparkinfer " + runId + ": plan (token counts)");
    Dataset<Row> planned = Completions.plan(input, model, o, stage).persist(StorageLevel.MEMORY_AND_DISK());
    try {
      boolean dedup = o.dedup() && o.isGreedy();
      boolean inPlaceAllowed = cache == null && o.partitions() == 0 && !stage.isSet() && inPlaceMode(spark);
      PlanSummary summary = PlanSummary.of(planned, PlanSummary.MAX_ID_HASHES, inPlaceAllowed && dedup);
      counts.rows = summary.rows();
      counts.plannedErrors = summary.plannedErrors();
      counts.inputErrors = summary.inputErrors();
      counts.longestPromptTokens = summary.longestPromptTokens();
      if (!resuming) {
        counts.inputRows = counts.rows;
      }
      if (summary.repeatedIds() > 0) {
        checkIds(planned, input);
      }
      long validRows = counts.rows - counts.plannedErrors;
      Dataset<Row> groups = null;
      Dataset<Row> looked = null;
      Dataset<Row> cached = null;
      long computeRows = validRows;
      if (validRows > 0) {
        groups = Completions.requests(planned);
        if (cache != null) {
          if (dedup) {
            groups = Completions.byPrompt(groups); // looked up, and its saved tokens counted, once per prompt
          }
          spark.sparkContext().setJobDescription("sparkinfer " + runId + ": look up the result cache");
          looked = cache.lookup(groups).persist(StorageLevel.MEMORY_AND_DISK());
          Row h = looked.agg(sum(when(ResultCache.hit(), size(col(Tables.IDS))).otherwise(0)),
              sum(when(not(ResultCache.hit()), size(col(Tables.IDS))).otherwise(0)),
              sum(when(ResultCache.hit(), col(ResultCache.CACHED + Tables.COMPLETION_TOKENS)).otherwise(0))).first();
          counts.cacheHits = h.isNullAt(0) ? 0 : h.getLong(0);
          counts.cacheMisses = h.isNullAt(1) ? 0 : h.getLong(1);
          counts.cacheTokensSaved = h.isNullAt(2) ? 0 : h.getLong(2);
          cached = counts.cacheHits > 0 ? ResultCache.hitRows(looked, model.uri(), runId) : null;
          groups = counts.cacheMisses > 0 ? looked.where(not(ResultCache.hit()))
              .select(col(Tables.PROMPT), col(Tables.PROMPT_TOKENS), col(Tables.IDS), col(Tables.PROMPT_TOKEN_IDS),
                  col(Tables.TIEBREAK)) : null;
          computeRows = counts.cacheMisses;
        }
      }
      int waves = o.commitEvery() > 0 ? (int) Math.max(1, (computeRows + o.commitEvery() - 1) / o.commitEvery()) : 1;
      int partitions = o.partitions() > 0 ? o.partitions()
          : defaultPartitions((computeRows + waves - 1) / waves, spark.sparkContext().defaultParallelism());
      boolean inPlace = groups != null && inPlaceAllowed && summary.partitions() == partitions
          && (!dedup || summary.repeatedPrompts() == 0);
      LOG.info("run {}: {} rows to answer ({} skipped, {} planning errors of which {} unreadable input rows{}), {} "
          + "commit(s) of {} inference partitions, {}", runId, counts.rows, counts.inputRows - counts.rows,
          counts.plannedErrors, counts.inputErrors, cache == null ? "" : ", " + counts.cacheHits
              + " answered from the cache, " + counts.cacheMisses + " not found there", waves, partitions,
          inPlace ? "sorted by length where planning left them" : "ranged by prompt length");
      if (groups != null && waves > 1) {
        groups = groups.persist(StorageLevel.MEMORY_AND_DISK()); // each wave reads it again
      }
      // no error rows to write beside inference: none in the wave's query. Read from the cached plan, their empty
      // partitions' tasks were scheduled first and held every core for 0.2 s before the inference tasks started
      // (an H200's host, bench/results/2026-12-03-e2e-NVIDIA-H200-run27)
      Dataset<Row> errors = counts.plannedErrors > 0 || groups == null
          ? Completions.errorRows(planned, model.uri(), runId) : null;
      LengthRanges ranges = groups != null && !inPlace && cutsRanges(cache != null, spark)
          ? LengthRanges.of(summary.promptLengths(), partitions) : null;
      return new RunPlan(planned, errors, cached, looked, groups, groups != null && waves > 1, dedup, waves,
          partitions, ranges, inPlace);
    } catch (RuntimeException e) {
      planned.unpersist();
      throw e;
    }
  }

  /**
   * Whether the wave's ranges are cut from planning's count of the prompts' lengths ({@link LengthRanges}) rather than
   * sampled by Spark's range partitioner: when the requests are the rows planning counted (no result cache answered
   * some), and RAPIDS' plugin is not configured (RAPIDS runs Spark's range shuffle on the GPU, and not a shuffle to
   * partitions that Java code names).
   */
  static boolean cutsRanges(boolean cache, SparkSession spark) {
    return !cache && !RapidsPlugin.configured(spark.sparkContext().getConf());
  }

  /**
   * Whether a run's waves may be arranged where planning left their rows ({@link Completions#arrangeInPlace}) rather
   * than range-partitioned by prompt length: in local mode, where every partition feeds the one executor's generators
   * and ranges spread nothing over executors, and not under RAPIDS' plugin. {@link #make} arranges in place when this
   * holds, no result cache or {@code --partitions} is given, the inference stage asks for no devices of its own, the
   * planned rows' partitions are as many as the wave's, and, with {@code --dedup}, planning counted no prompt held
   * by two rows that can run (they would meet only in a range). The range shuffle's map stage, 0.45-0.49 s between
   * the planning job and the first inference task on an H200's host (bench/results/2026-12-04-e2e-NVIDIA-H200-run39),
   * is then not run.
   */
  static boolean inPlaceMode(SparkSession spark) {
    return spark.sparkContext().isLocal() && cutsRanges(false, spark);
  }

  /** Output commits the run makes. */
  int waves() {
    return waves;
  }

  /** Inference partitions per commit. */
  int partitions() {
    return partitions;
  }

  /**
   * The completion rows of the rows that cannot run, answered by planning; null when there are none and the run has
   * requests to compute (a run with none writes this, even empty).
   */
  Dataset<Row> errorRows() {
    return errors;
  }

  /** The completion rows answered from the result cache (written with the first commit); null when none. */
  Dataset<Row> cachedRows() {
    return cached;
  }

  /** The ids that commit {@code wave} computes (one column, id); null when it computes none. */
  Dataset<Row> computedIds(int wave) {
    if (groups == null) {
      return null;
    }
    return part(wave).select(explode(col(Tables.IDS)).as(Tables.ID));
  }

  private Dataset<Row> part(int wave) {
    return waves == 1 ? groups : groups.where(pmod(col(Tables.TIEBREAK), lit(waves)).equalTo(wave));
  }

  /**
   * The requests of commit {@code wave}: (prompt, prompt_tokens, ids) in {@link #partitions()} partitions,
   * ranged on (length, hash) so similar lengths share a partition and equal lengths still spread, or in place (the
   * planned partitions, {@link #inPlaceMode}), and sorted by length inside each; null when no row can run.
   */
  Dataset<Row> wave(int wave) {
    if (groups == null) {
      return null;
    }
    return inPlace ? Completions.arrangeInPlace(part(wave), dedup)
        : Completions.arrange(part(wave), partitions, dedup, ranges);
  }

  /** Partitions for {@code rows}: the cluster's parallelism, more when the input is large. */
  static int defaultPartitions(long rows, int parallelism) {
    long byRows = (rows + ROWS_PER_PARTITION - 1) / ROWS_PER_PARTITION;
    long n = Math.max(parallelism, byRows);
    return (int) Math.max(1, Math.min(n, Math.max(rows, 1)));
  }

  /**
   * Fails when an id is repeated: each input row is answered exactly once under its id, so two rows with one id
   * are a mistake in the input (rows without a readable id have ids of their own, made of where they are). The
   * message names a few repeated ids and where they are ({@code file:line}).
   */
  private static void checkIds(Dataset<Row> planned, Dataset<Row> input) {
    List<Row> bad = planned.groupBy(col(Tables.ID)).count().where(col("count").gt(1)).limit(5).collectAsList();
    if (bad.isEmpty()) {
      return;
    }
    List<String> ids = new ArrayList<>();
    for (Row r : bad) {
      ids.add(r.getString(0));
    }
    Map<String, List<String>> sources = new TreeMap<>();
    for (Row r : input.where(col(Tables.ID).isin(ids.toArray())).select(col(Tables.ID), col(Tables.SOURCE))
        .limit(20).collectAsList()) {
      if (!r.isNullAt(1)) {
        sources.computeIfAbsent(r.getString(0), k -> new ArrayList<>()).add(r.getString(1));
      }
    }
    sources.values().forEach(at -> at.sort(null));
    List<String> examples = new ArrayList<>();
    for (Row r : bad) {
      List<String> at = sources.getOrDefault(r.getString(0), List.of());
      examples.add("'" + r.getString(0) + "' x" + r.getLong(1) + (at.isEmpty() ? "" : " at " + String.join(", ", at)));
    }
    throw new IllegalArgumentException("the input's ids must be unique; found " + String.join("; ", examples)
        + " (fix the input, or pick another --id-column)");
  }

  @Override
  public void close() {
    if (groupsCached) {
      groups.unpersist();
    }
    if (looked != null) {
      looked.unpersist();
    }
    planned.unpersist();
  }
}
