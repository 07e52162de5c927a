package io.sparkinfer.jobs;

import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/** Column names and schemas of the tables the job reads and writes (documented in README). */
public final class Tables {

  private Tables() {}

  // completions
  public static final String ID = "id";
  public static final String PROMPT = "prompt";
  public static final String COMPLETION = "completion";
  public static final String OUTPUT_TOKEN_IDS = "output_token_ids";
  public static final String PROMPT_TOKENS = "prompt_tokens";
  public static final String COMPLETION_TOKENS = "completion_tokens";
  public static final String FINISH_REASON = "finish_reason";
  public static final String ERROR_CODE = "error_code";
  public static final String ERROR_MESSAGE = "error_message";
  public static final String MODEL = "model";
  public static final String PRECISION = "precision";
  public static final String LAYOUT = "layout";
  public static final String DEVICE = "device";
  public static final String EXECUTOR_ID = "executor_id";
  public static final String LATENCY_MS = "latency_ms";
  public static final String TTFT_MS = "time_to_first_token_ms";
  public static final String RUN_ID = "run_id";
  public static final String CACHE_HIT = "cache_hit";

  /** One row per input id. */
  public static final StructType COMPLETIONS = new StructType(new StructField[] {
      field(ID, DataTypes.StringType, false),
      field(PROMPT, DataTypes.StringType, true),
      field(COMPLETION, DataTypes.StringType, true),
      field(OUTPUT_TOKEN_IDS, DataTypes.createArrayType(DataTypes.LongType, false), false),
      field(PROMPT_TOKENS, DataTypes.IntegerType, false),
      field(COMPLETION_TOKENS, DataTypes.IntegerType, false),
      field(FINISH_REASON, DataTypes.StringType, false),
      field(ERROR_CODE, DataTypes.StringType, true),
      field(ERROR_MESSAGE, DataTypes.StringType, true),
      field(MODEL, DataTypes.StringType, false),
      field(PRECISION, DataTypes.StringType, true),
      field(LAYOUT, DataTypes.StringType, true),
      field(DEVICE, DataTypes.StringType, true),
      field(EXECUTOR_ID, DataTypes.StringType, true),
      field(LATENCY_MS, DataTypes.DoubleType, false),
      field(TTFT_MS, DataTypes.DoubleType, false),
      field(RUN_ID, DataTypes.StringType, false),
      field(CACHE_HIT, DataTypes.BooleanType, false),
  });

  // the input as read (internal)
  /** Where an input row is: {@code <file>:<line>} (JSONL, CSV) or {@code <file>:<row>} (Parquet), 1-based. */
  static final String SOURCE = "source";

  /**
   * The input as {@link InputTable} reads it: one row per input row, with the error that row already is when it
   * cannot be read (a bad JSON line or CSV record, a prompt of the wrong type, invalid UTF-8, no id).
   */
  static final StructType INPUT = new StructType(new StructField[] {
      field(ID, DataTypes.StringType, false),
      field(PROMPT, DataTypes.StringType, true),
      field(ERROR_CODE, DataTypes.StringType, true),
      field(ERROR_MESSAGE, DataTypes.StringType, true),
      field(SOURCE, DataTypes.StringType, true),
  });

  // planning (internal)
  static final String IDS = "ids";
  static final String TIEBREAK = "tiebreak";
  static final String PROMPT_TOKEN_IDS = "prompt_token_ids";

  /**
   * The planner's output: each input row with its token count and token ids ({@link PromptTokenIds}: 4 bytes an id),
   * or why it cannot run (then no ids). The inference tasks generate from these ids: a prompt is tokenized once per run.
   */
  static final StructType PLANNED = new StructType(new StructField[] {
      field(ID, DataTypes.StringType, true),
      field(PROMPT, DataTypes.StringType, true),
      field(PROMPT_TOKENS, DataTypes.IntegerType, false),
      field(ERROR_CODE, DataTypes.StringType, true),
      field(ERROR_MESSAGE, DataTypes.StringType, true),
      field(EXECUTOR_ID, DataTypes.StringType, true),
      field(PROMPT_TOKEN_IDS, DataTypes.BinaryType, true),
  });

  // the result cache (--cache)
  public static final String KEY = "key";
  public static final String MODEL_FINGERPRINT = "model_fingerprint";
  public static final String SETTINGS = "settings";
  public static final String SEED = "seed";
  public static final String BACKEND = "backend";
  public static final String CREATED_AT = "created_at";

  /**
   * The result cache ({@link ResultCache}): one row per answered request, under its key ({@link CacheKey}), with what
   * a completions row needs to be written again and where the answer came from.
   */
  public static final StructType RESULT_CACHE = new StructType(new StructField[] {
      field(KEY, DataTypes.StringType, false),
      field(MODEL_FINGERPRINT, DataTypes.StringType, false),
      field(SETTINGS, DataTypes.StringType, false),
      field(SEED, DataTypes.LongType, true),
      field(PROMPT, DataTypes.StringType, false),
      field(COMPLETION, DataTypes.StringType, true),
      field(OUTPUT_TOKEN_IDS, DataTypes.createArrayType(DataTypes.LongType, false), false),
      field(PROMPT_TOKENS, DataTypes.IntegerType, false),
      field(COMPLETION_TOKENS, DataTypes.IntegerType, false),
      field(FINISH_REASON, DataTypes.StringType, false),
      field(MODEL, DataTypes.StringType, false),
      field(PRECISION, DataTypes.StringType, false),
      field(DEVICE, DataTypes.StringType, true),
      field(BACKEND, DataTypes.StringType, false),
      field(LAYOUT, DataTypes.StringType, true),
      field(RUN_ID, DataTypes.StringType, false),
      field(CREATED_AT, DataTypes.TimestampType, false),
  });

  /** One row per run of the job, appended. */
  public static final StructType JOB_RUNS = new StructType(new StructField[] {
      field("run_id", DataTypes.StringType, false),
      field("status", DataTypes.StringType, false),
      field("error", DataTypes.StringType, true),
      field("started_at", DataTypes.TimestampType, false),
      field("finished_at", DataTypes.TimestampType, false),
      field("wall_s", DataTypes.DoubleType, false),
      field("model", DataTypes.StringType, false),
      field("precision", DataTypes.StringType, false),
      field("device", DataTypes.StringType, false),
      field("backend", DataTypes.StringType, false),
      field("layout", DataTypes.StringType, false),
      field("input", DataTypes.StringType, false),
      field("output", DataTypes.StringType, false),
      field("format", DataTypes.StringType, false),
      field("resume", DataTypes.BooleanType, false),
      field("input_rows", DataTypes.LongType, false),
      field("skipped_rows", DataTypes.LongType, false),
      field("rows", DataTypes.LongType, false),
      field("planned_error_rows", DataTypes.LongType, false),
      field("input_error_rows", DataTypes.LongType, false),
      field("requests", DataTypes.LongType, false),
      field("deduplicated_rows", DataTypes.LongType, false),
      field("ok_rows", DataTypes.LongType, false),
      field("error_rows", DataTypes.LongType, false),
      field("prompt_tokens", DataTypes.LongType, false),
      field("completion_tokens", DataTypes.LongType, false),
      field("generate_s", DataTypes.DoubleType, false),
      field("tokens_per_s", DataTypes.DoubleType, false),
      field("rows_per_s", DataTypes.DoubleType, false),
      field("max_new_tokens", DataTypes.IntegerType, false),
      field("temperature", DataTypes.DoubleType, false),
      field("top_k", DataTypes.IntegerType, false),
      field("top_p", DataTypes.DoubleType, false),
      field("seed", DataTypes.LongType, false),
      field("batch_size", DataTypes.StringType, false),
      field("max_prompt_tokens", DataTypes.IntegerType, false),
      field("engine_options", DataTypes.createMapType(DataTypes.StringType, DataTypes.StringType, true), false),
      field("partitions", DataTypes.IntegerType, false),
      field("commits", DataTypes.IntegerType, false),
      field("executors", DataTypes.IntegerType, false),
      field("model_loads", DataTypes.IntegerType, false),
      field("model_loads_by_executor", DataTypes.createMapType(DataTypes.StringType, DataTypes.IntegerType, false), false),
      field("model_load_s", DataTypes.DoubleType, false),
      field("master", DataTypes.StringType, false),
      field("spark_version", DataTypes.StringType, false),
      field("project_version", DataTypes.StringType, false),
      field("oom_retries", DataTypes.LongType, false),
      field("libtorch", DataTypes.StringType, true),
      field("first_inference_s", DataTypes.DoubleType, true),
      field("inference_span_s", DataTypes.DoubleType, true),
      field("inference_task_s", DataTypes.DoubleType, false),
      field("engine_wait_s", DataTypes.DoubleType, false),
      field("engine_idle_s", DataTypes.DoubleType, false),
      field("batch_sizes", DataTypes.StringType, true),
      field("cache", DataTypes.StringType, true),
      field("cache_hits", DataTypes.LongType, false),
      field("cache_misses", DataTypes.LongType, false),
      field("cache_tokens_saved", DataTypes.LongType, false),
  });

  private static StructField field(String name, DataType type, boolean nullable) {
    return new StructField(name, type, nullable, Metadata.empty());
  }
}
