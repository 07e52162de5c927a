package io.sparkinfer.jobs;

import static org.apache.spark.sql.functions.array;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.collect_list;
import static org.apache.spark.sql.functions.first;
import static org.apache.spark.sql.functions.flatten;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.min;
import static org.apache.spark.sql.functions.xxhash64;

import io.sparkinfer.generate.FinishReason;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataTypes;

/**
 * The one path from prompts to completion rows ({@link Tables#COMPLETIONS}), lazy like any Spark transformation:
 * the batch job ({@link BatchInference}, through {@link RunPlan}) and the Spark ML stage (TextGenerator)
 * both run it.
 *
 * <ol>
 *   <li>{@link #plan}: token ids and counts, and the rows that cannot run ({@link PromptPlanner}, on the executors);
 *   <li>{@link #requests}: the rows that can run as requests;
 *   <li>{@link #arrange}: range-partitioned by prompt length, sorted inside each partition, identical greedy prompts
 *       under one request; or {@link #arrangeInPlace}, sorted where planning left them (one executor);
 *   <li>{@link #infer}: each partition through the executor's engines ({@link PartitionInference}), under the
 *       inference stage's GPU resource profile where Spark schedules GPUs ({@link InferenceStageProfile});
 *   <li>{@link #errorRows}: the rows planning answered, as completion rows.
 * </ol>
 */
final class Completions {

  private Completions() {}

  /** Planned rows ({@link Tables#PLANNED}) of input rows ({@link Tables#INPUT}). */
  static Dataset<Row> plan(Dataset<Row> input, ModelLocation model, JobOptions o, InferenceStageProfile stage) {
    JobOptions preload = preloads(o, stage) ? o : null;
    return input.mapPartitions(new PromptPlanner(model, o.maxPromptTokens(), preload), Encoders.row(Tables.PLANNED));
  }

  /**
   * Whether engines load while the prompts are planned ({@code --preload-engines}): not when the inference stage asks
   * for devices of its own (the planning tasks run elsewhere), nor with a result cache (a run it answers whole loads
   * no model).
   */
  static boolean preloads(JobOptions o, InferenceStageProfile stage) {
    return o.get(JobOptions.PRELOAD_ENGINES) && !stage.isSet() && o.cache() == null;
  }

  /**
   * The requests of the planned rows that can run: (prompt, prompt_tokens, ids, prompt_token_ids, tiebreak), one per
   * row, ids holding its id. Identical prompts share a tiebreak (a hash of the prompt), so they stay together in a
   * wave and meet in one partition when arranged, where {@link #arrange} can merge them.
   */
  static Dataset<Row> requests(Dataset<Row> planned) {
    return planned.where(col(Tables.ERROR_CODE).isNull())
        .select(col(Tables.PROMPT), col(Tables.PROMPT_TOKENS), array(col(Tables.ID)).as(Tables.IDS),
            col(Tables.PROMPT_TOKEN_IDS))
        .withColumn(Tables.TIEBREAK, xxhash64(col(Tables.PROMPT)));
  }

  /**
   * The requests with identical prompts grouped under one (prompt, prompt_tokens, ids, prompt_token_ids, tiebreak) by
   * a shuffle: what the result cache looks up ({@link ResultCache#lookup}), once per distinct prompt. Runs without a
   * cache leave the grouping to {@link #arrange}, without a shuffle of its own.
   */
  static Dataset<Row> byPrompt(Dataset<Row> requests) {
    return requests.groupBy(col(Tables.PROMPT)).agg(min(col(Tables.PROMPT_TOKENS)).as(Tables.PROMPT_TOKENS),
        flatten(collect_list(col(Tables.IDS))).as(Tables.IDS),
        first(col(Tables.PROMPT_TOKEN_IDS)).as(Tables.PROMPT_TOKEN_IDS), // one prompt's ids, the same in every row
        min(col(Tables.TIEBREAK)).as(Tables.TIEBREAK));
  }

  /**
   * Requests in {@code partitions} partitions, ranged on (length, hash) so similar lengths share a partition and
   * equal lengths still spread, sorted by length inside each, longest first (a task's first request sizes the KV
   * cache of the batch that runs all of them, {@link PartitionInference}): (prompt, prompt_tokens, ids,
   * prompt_token_ids). With {@code dedup}, identical prompts (adjacent after the sort, which ends on the prompt)
   * become one request holding all their ids ({@link RepeatedPrompts}): no grouping shuffle before the range's.
   */
  static Dataset<Row> arrange(Dataset<Row> requests, int partitions, boolean dedup) {
    return arrange(requests, partitions, dedup, null);
  }

  /**
   * {@link #arrange(Dataset, int, boolean)} into {@code ranges}' partitions, cut from the requests' lengths counted in
   * planning ({@link PlanSummary#promptLengths}), without the range partitioner's sampling job; null: sampled.
   */
  static Dataset<Row> arrange(Dataset<Row> requests, int partitions, boolean dedup, LengthRanges ranges) {
    if (ranges != null && ranges.partitions() != partitions) {
      throw new IllegalArgumentException("ranges of " + ranges.partitions() + " partitions for " + partitions);
    }
    Column length = col(Tables.PROMPT_TOKENS);
    Column tiebreak = col(Tables.TIEBREAK);
    Dataset<Row> ranged = ranges == null ? requests.repartitionByRange(partitions, length, tiebreak)
        : requests.repartitionById(partitions, ranges.partitionColumn(length, tiebreak));
    return arrangeInPlace(ranged, dedup);
  }

  /**
   * The requests as they are partitioned, sorted by length inside each partition, longest first, as {@link #arrange}
   * sorts its ranges: no shuffle, and so no job's stage of its own before the inference tasks. For a run whose
   * partitions all feed one executor's generators ({@link RunPlan}: local mode), where ranges would spread nothing
   * across executors. With {@code dedup}, identical prompts of one partition become one request; prompts repeated
   * across partitions are not merged, so a run with {@code --dedup} arranges in place only when none repeat.
   */
  static Dataset<Row> arrangeInPlace(Dataset<Row> requests, boolean dedup) {
    Dataset<Row> sorted = requests.sortWithinPartitions(col(Tables.PROMPT_TOKENS).desc(), col(Tables.TIEBREAK),
        col(Tables.PROMPT))
        .select(col(Tables.PROMPT), col(Tables.PROMPT_TOKENS), col(Tables.IDS), col(Tables.PROMPT_TOKEN_IDS));
    return dedup ? sorted.mapPartitions(new RepeatedPrompts(), Encoders.row(sorted.schema())) : sorted;
  }

  /**
   * The completion rows of arranged requests, one per id, from each executor's engines.
   *
   * @param longestPromptTokens the run's longest prompt that can run (0: unknown), for the generators' first batch
   */
  static Dataset<Row> infer(Dataset<Row> arranged, JobOptions o, ModelLocation model, String runId,
      JobMetrics metrics, InjectedFault fault, int longestPromptTokens) {
    return arranged.mapPartitions(new PartitionInference(o, model, runId, metrics, fault, longestPromptTokens),
        Encoders.row(Tables.COMPLETIONS));
  }

  /** The planned rows that cannot run, as completion rows with their error. */
  static Dataset<Row> errorRows(Dataset<Row> planned, String model, String runId) {
    Column nullString = lit(null).cast(DataTypes.StringType);
    return planned.where(col(Tables.ERROR_CODE).isNotNull()).select(
        col(Tables.ID),
        col(Tables.PROMPT),
        nullString.as(Tables.COMPLETION),
        lit(new long[0]).as(Tables.OUTPUT_TOKEN_IDS),
        col(Tables.PROMPT_TOKENS),
        lit(0).as(Tables.COMPLETION_TOKENS),
        lit(FinishReason.ERROR.label()).as(Tables.FINISH_REASON),
        col(Tables.ERROR_CODE),
        col(Tables.ERROR_MESSAGE),
        lit(model).as(Tables.MODEL),
        nullString.as(Tables.PRECISION),
        nullString.as(Tables.LAYOUT),
        nullString.as(Tables.DEVICE),
        col(Tables.EXECUTOR_ID),
        lit(0.0).as(Tables.LATENCY_MS),
        lit(0.0).as(Tables.TTFT_MS),
        lit(runId).as(Tables.RUN_ID),
        lit(false).as(Tables.CACHE_HIT));
  }

  /**
   * Every input row's completion row, in {@code partitions} inference partitions: all of the above, without the
   * batch job's counting, waves and resume.
   */
  static Dataset<Row> generate(Dataset<Row> input, JobOptions o, ModelLocation model, String runId, int partitions,
      JobMetrics metrics) {
    org.apache.spark.sql.SparkSession spark = input.sparkSession();
    InferenceStageProfile stage = InferenceStageProfile.forRun(spark, o.inferenceGpus(),
        o.get(io.sparkinfer.engine.EngineOptions.LAYOUT));
    Dataset<Row> planned = plan(input, model, o, stage);
    Dataset<Row> arranged = arrange(requests(planned), partitions, o.dedup() && o.isGreedy());
    // no planning query here (the plan stays lazy): the generators size batches by the requests they see
    Dataset<Row> answered = infer(stage.apply(spark, arranged), o, model, runId, metrics, null, 0);
    return answered.unionByName(errorRows(planned, model.uri(), runId));
  }
}
