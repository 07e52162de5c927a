package io.sparkinfer.jobs.sweep;

import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The sweep's tables (documented in README): {@code sweep_trials} at {@code --output}, one row per trial,
 * partitioned by {@code date}; {@code _sweep_runs} beside it, one row per study.
 */
public final class SweepTables {

  private SweepTables() {}

  /** Trial statuses. */
  public static final String OK = "ok";
  public static final String OOM = "oom";
  public static final String PRUNED = "pruned";
  public static final String FAILED = "failed";

  /** The subdirectory of {@code --output} with one row per study (hidden from readers of the trials table). */
  public static final String RUNS_DIR = "_sweep_runs";
  /** The subdirectory of {@code --output} with each study's charts and {@code index.html}. */
  public static final String REPORT_DIR = "_report";

  /** One row per trial. */
  public static final StructType TRIALS = new StructType(new StructField[] {
      field("run_id", DataTypes.StringType, false),
      field("trial", DataTypes.IntegerType, false),
      field("started_at", DataTypes.TimestampType, false),
      field("wall_s", DataTypes.DoubleType, false),
      field("model", DataTypes.StringType, false),
      field("model_sha256", DataTypes.StringType, true),
      field("gpu_name", DataTypes.StringType, true),
      field("gpu_count", DataTypes.IntegerType, false),
      field("device", DataTypes.StringType, true),
      field("executor_id", DataTypes.StringType, true),
      field("precision", DataTypes.StringType, true),
      field("backend", DataTypes.StringType, true),
      field("layout", DataTypes.StringType, true),
      field("threads", DataTypes.IntegerType, false),
      field("batch_size", DataTypes.IntegerType, true),
      field("prompt_len", DataTypes.IntegerType, true),
      field("max_new_tokens", DataTypes.IntegerType, false),
      field("params", DataTypes.createMapType(DataTypes.StringType, DataTypes.StringType, true), false),
      field("engine_options", DataTypes.createMapType(DataTypes.StringType, DataTypes.StringType, true), false),
      field("repeats", DataTypes.IntegerType, false),
      field("tokens_per_s", DataTypes.DoubleType, true),
      field("tokens_per_s_stddev", DataTypes.DoubleType, true),
      field("tokens_per_s_ci95", DataTypes.DoubleType, true),
      field("tokens_per_s_samples", DataTypes.createArrayType(DataTypes.DoubleType, false), false),
      field("prompt_tokens_per_s", DataTypes.DoubleType, true),
      field("ttft_p50_ms", DataTypes.DoubleType, true),
      field("ttft_p99_ms", DataTypes.DoubleType, true),
      field("token_latency_p50_ms", DataTypes.DoubleType, true),
      field("token_latency_p99_ms", DataTypes.DoubleType, true),
      field("latency_p50_ms", DataTypes.DoubleType, true),
      field("latency_p99_ms", DataTypes.DoubleType, true),
      field("peak_gpu_mem_mb", DataTypes.DoubleType, true),
      field("gpu_util_mean", DataTypes.DoubleType, true),
      field("gpu_mem_mean_mb", DataTypes.DoubleType, true),
      field("agreement_identical", DataTypes.DoubleType, true),
      field("agreement_first_token", DataTypes.DoubleType, true),
      field("agreement_common_prefix", DataTypes.DoubleType, true),
      field("pareto", DataTypes.BooleanType, false),
      field("satisfies_constraints", DataTypes.BooleanType, false),
      field("status", DataTypes.StringType, false),
      field("error", DataTypes.StringType, true),
      field("project_version", DataTypes.StringType, false),
      field("date", DataTypes.StringType, false),
  });

  /** One row per study. */
  public static final StructType RUNS = new StructType(new StructField[] {
      field("run_id", DataTypes.StringType, false),
      field("status", DataTypes.StringType, false),
      field("error", DataTypes.StringType, true),
      field("started_at", DataTypes.TimestampType, false),
      field("finished_at", DataTypes.TimestampType, false),
      field("wall_s", DataTypes.DoubleType, false),
      field("model", DataTypes.StringType, false),
      field("model_sha256", DataTypes.StringType, true),
      field("gpu_name", DataTypes.StringType, true),
      field("gpu_count", DataTypes.IntegerType, false),
      field("driver", DataTypes.StringType, true),
      field("djl_version", DataTypes.StringType, true),
      field("libtorch_version", DataTypes.StringType, true),
      field("project_version", DataTypes.StringType, false),
      field("space", DataTypes.StringType, false),
      field("workload", DataTypes.StringType, false),
      field("sampler", DataTypes.StringType, false),
      field("seed", DataTypes.LongType, false),
      field("repeats", DataTypes.IntegerType, false),
      field("objectives", DataTypes.StringType, false),
      field("constraints", DataTypes.StringType, true),
      field("reference", DataTypes.StringType, true),
      field("trials", DataTypes.IntegerType, false),
      field("ok_trials", DataTypes.IntegerType, false),
      field("best_trial", DataTypes.IntegerType, true),
      field("best_tokens_per_s", DataTypes.DoubleType, true),
      field("master", DataTypes.StringType, false),
      field("date", DataTypes.StringType, false),
  });

  private static StructField field(String name, DataType type, boolean nullable) {
    return new StructField(name, type, nullable, Metadata.empty());
  }
}
